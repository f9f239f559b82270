//! Unit tests of the Type #1 entry parser and the UAPI version comparison. The comparison is
//! checked against `systemd-analyze compare-versions` in `crates/guest/tests/bls_versions.rs`.

use super::*;

#[test]
fn parses_the_keys_of_a_fedora_style_entry() {
    let text = b"# comment\n\
title Fedora Linux 39 (Thirty Nine)\n\
version 6.5.6-300.fc39.x86_64\n\
machine-id 8a1b6d4e2f7c4d0e9b3a5c7d1e2f3a4b\n\
sort-key fedora\n\
linux /8a1b6d4e2f7c4d0e9b3a5c7d1e2f3a4b/6.5.6-300.fc39.x86_64/linux\n\
initrd /8a1b6d4e2f7c4d0e9b3a5c7d1e2f3a4b/6.5.6-300.fc39.x86_64/microcode\n\
initrd\t/8a1b6d4e2f7c4d0e9b3a5c7d1e2f3a4b/6.5.6-300.fc39.x86_64/initrd\n\
options root=UUID=0d3f rw\r\n\
options   console=ttyS0,115200n8 quiet\n\
devicetree-overlay /a.dtbo /b.dtbo\n\
architecture x64\n\
grub_users $grub_users\n\
grub_class fedora\n";
    let e = parse("8a1b-6.5.6-300.fc39.x86_64+3-1.conf", text);
    assert_eq!(e.id, "8a1b-6.5.6-300.fc39.x86_64.conf");
    assert_eq!(e.counter, Some(BootCounter { left: 3, done: 1 }));
    assert_eq!(e.title.as_deref(), Some("Fedora Linux 39 (Thirty Nine)"));
    assert_eq!(e.version.as_deref(), Some("6.5.6-300.fc39.x86_64"));
    assert_eq!(e.sort_key.as_deref(), Some("fedora"));
    assert_eq!(
        e.machine_id.as_deref(),
        Some("8a1b6d4e2f7c4d0e9b3a5c7d1e2f3a4b")
    );
    assert!(e.linux.as_deref().unwrap().ends_with("/linux"));
    assert_eq!(e.initrd.len(), 2);
    assert!(e.initrd[0].ends_with("/microcode") && e.initrd[1].ends_with("/initrd"));
    assert_eq!(
        e.cmdline(),
        "root=UUID=0d3f rw console=ttyS0,115200n8 quiet"
    );
    assert_eq!(e.devicetree_overlay, ["/a.dtbo", "/b.dtbo"]);
    assert_eq!(e.architecture.as_deref(), Some("x64"));
    assert_eq!(
        e.other,
        [
            ("grub_users".to_string(), "$grub_users".to_string()),
            ("grub_class".to_string(), "fedora".to_string())
        ]
    );
    assert!(e.problems.is_empty(), "{:?}", e.problems);
}

#[test]
fn quoted_values_are_unquoted_and_repeats_noted() {
    let e = parse(
        "A.conf",
        b"title \"Quoted title\"\nlinux /a\nlinux /b\noptions\n",
    );
    assert_eq!(e.id, "a.conf");
    assert_eq!(e.title.as_deref(), Some("Quoted title"));
    assert_eq!(e.linux.as_deref(), Some("/b"));
    assert_eq!(e.options, [""]);
    assert_eq!(e.problems.len(), 1, "{:?}", e.problems);
}

#[test]
fn huge_and_hostile_entries_are_bounded() {
    let mut big = Vec::new();
    for _ in 0..100_000 {
        big.extend_from_slice(b"initrd /x\n");
    }
    let e = parse("big.conf", &big);
    assert_eq!(e.initrd.len(), MAX_REPEATS);
    assert!(e.problems.iter().any(|p| p.contains("only the first")));
    assert!(e.problems.iter().any(|p| p.contains("`initrd`")));
    let e = parse(
        "bin.conf",
        &[0xff, 0xfe, b'\n', b'l', b'i', b'n', b'u', b'x', b' ', 0x80],
    );
    assert_eq!(e.linux.as_deref(), Some("\u{fffd}"));
    let e = parse("one-line.conf", &vec![b'x'; MAX_ENTRY_BYTES * 2]);
    assert_eq!(e.other.len(), 1);
}

#[test]
fn boot_counters_follow_systemd_boot() {
    assert_eq!(
        entry_id("a+0.conf"),
        ("a.conf".into(), Some(BootCounter { left: 0, done: 0 }))
    );
    assert_eq!(
        entry_id("a+5-2.conf").1,
        Some(BootCounter { left: 5, done: 2 })
    );
    // Not a counter: kept in the id.
    assert_eq!(entry_id("a+b.conf"), ("a+b.conf".into(), None));
    assert_eq!(entry_id("a+1-.conf"), ("a+1-.conf".into(), None));
    assert_eq!(entry_id("a+99999999999.conf").1, None);
    assert_eq!(entry_id("noext"), ("noext".into(), None));
}

#[test]
fn versions_compare_as_the_uapi_specification_says() {
    let lt = |a: &str, b: &str| {
        assert_eq!(version_cmp(Some(a), Some(b)), Ordering::Less, "{a} < {b}");
        assert_eq!(
            version_cmp(Some(b), Some(a)),
            Ordering::Greater,
            "{b} > {a}"
        );
    };
    lt("123", "124");
    lt("123", "123.4");
    lt("123~rc1", "123");
    lt("123~rc1", "123~rc2");
    lt("123-1", "123.1");
    lt("123^post1", "123.1");
    lt("123", "123^post1");
    lt("123", "123a");
    lt("123.a", "123.1");
    lt("6.1.0-9-amd64", "6.1.0-13-amd64");
    lt("abc", "abcde");
    lt("1--2", "1--3");
    assert_eq!(version_cmp(Some("00123"), Some("123")), Ordering::Equal);
    assert_eq!(version_cmp(Some("1_2"), Some("1__2")), Ordering::Equal);
    assert_eq!(version_cmp(None, Some("1")), Ordering::Less);
    assert_eq!(version_cmp(Some(""), Some("1")), Ordering::Less);
}

#[test]
fn entries_sort_as_systemd_boots_menu() {
    // The set of systemd's own test (src/test/test-bootspec.c, bootspec_sort): expected order
    // d (sort-key kkkk), cx, c (sort-key xxxx, version 10 before 5), then without sort-key by
    // file name, decreasing: b, a-10, a-5.
    let files: [(&str, &[u8]); 6] = [
        (
            "a-10.conf",
            b"title A\nversion 10\nmachine-id dd235d00696545768f6f693bfd23b15f\n",
        ),
        (
            "a-5.conf",
            b"title A\nversion 5\nmachine-id dd235d00696545768f6f693bfd23b15f\n",
        ),
        (
            "b.conf",
            b"title B\nversion 3\nmachine-id b75451ad92f94feeab50b0b442768dbd\n",
        ),
        (
            "c.conf",
            b"title C\nsort-key xxxx\nversion 5\nmachine-id 309de666fd5044268a9a26541ac93176\n",
        ),
        (
            "cx.conf",
            b"title C\nsort-key xxxx\nversion 10\nmachine-id 309de666fd5044268a9a26541ac93176\n",
        ),
        (
            "d.conf",
            b"title D\nsort-key kkkk\nversion 100\nmachine-id 81c6e3147cf544c19006af023e22b292\n",
        ),
    ];
    let mut entries: Vec<BlsEntry> = files.iter().map(|(n, t)| parse(n, t)).collect();
    entries.sort_by(|a, b| compare(&a.sort_fields(), &b.sort_fields()));
    let order: Vec<&str> = entries.iter().map(|e| e.file_name.as_str()).collect();
    assert_eq!(
        order,
        [
            "d.conf",
            "cx.conf",
            "c.conf",
            "b.conf",
            "a-10.conf",
            "a-5.conf"
        ]
    );
}

#[test]
fn entries_without_tries_left_sort_last() {
    let mut entries = [
        parse("z+0.conf", b""),
        parse("a+2.conf", b""),
        parse("a+1-1.conf", b""),
    ];
    entries.sort_by(|a, b| compare(&a.sort_fields(), &b.sort_fields()));
    let order: Vec<&str> = entries.iter().map(|e| e.file_name.as_str()).collect();
    assert_eq!(order, ["a+2.conf", "a+1-1.conf", "z+0.conf"]);
    assert!(entries[2].is_bad());
}
