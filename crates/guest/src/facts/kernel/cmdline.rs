//! Kernel command lines from every place BOOT-014 lists: `/etc/default/grub` (+ `grub.d`), the
//! generated `grub.cfg` files, ESP `grub.cfg` (often just a `configfile` redirect), BLS entries
//! with `$kernelopts` from `grubenv`, `/etc/kernel/cmdline`, legacy `menu.lst`, FreeBSD
//! `loader.conf` and OpenBSD `boot.conf`. Each with its file and line, `root=` classified and
//! the referenced kernel/initrd files checked (BOOT-013).

use serde::Serialize;
use std::collections::BTreeMap;

/// A kernel command line split into arguments the way the kernel does (double quotes group
/// and are removed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cmdline {
    /// The text as found.
    pub raw: String,
    /// Arguments.
    pub args: Vec<String>,
}

impl Cmdline {
    /// Splits `raw` into arguments.
    pub fn parse(raw: &str) -> Cmdline {
        let mut args = Vec::new();
        let mut cur = String::new();
        let mut in_q = false;
        let mut any = false;
        for c in raw.chars() {
            match c {
                '"' => {
                    in_q = !in_q;
                    any = true;
                }
                c if c.is_whitespace() && !in_q => {
                    if any {
                        args.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                c => {
                    cur.push(c);
                    any = true;
                }
            }
        }
        if any {
            args.push(cur);
        }
        Cmdline {
            raw: raw.trim().to_string(),
            args,
        }
    }

    /// True when `arg` is present: exactly (`console=ttyS0`), or, for an argument without `=`,
    /// as a flag or a key (`quiet`, `rootdelay`).
    pub fn has(&self, arg: &str) -> bool {
        self.args.iter().any(|a| {
            a == arg || (!arg.contains('=') && a.split_once('=').is_some_and(|(k, _)| k == arg))
        })
    }

    /// Every value of `key`, in order (`console` may appear more than once).
    pub fn value(&self, key: &str) -> Vec<&str> {
        self.args
            .iter()
            .filter_map(|a| a.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
            .collect()
    }
}

/// How the root filesystem is referenced (BOOT-013).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootRefKind {
    /// `UUID=`.
    Uuid,
    /// `LABEL=`.
    Label,
    /// `PARTUUID=`.
    PartUuid,
    /// `PARTLABEL=`.
    PartLabel,
    /// A `/dev/disk/by-*` link.
    ByLink,
    /// `/dev/mapper/*` or `/dev/<vg>/<lv>` (LVM: stable).
    Mapper,
    /// A kernel device name (`/dev/sdX`, `/dev/vdX`, `/dev/nvmeXnY`, `/dev/hdX`, `/dev/xvdX`).
    DeviceName,
    /// Anything else (`zfs:`, `/dev/root`...).
    Other,
}

/// Classifies a `root=` value.
pub fn root_ref_kind(v: &str) -> RootRefKind {
    let up = v.to_ascii_uppercase();
    if up.starts_with("UUID=") {
        RootRefKind::Uuid
    } else if up.starts_with("LABEL=") {
        RootRefKind::Label
    } else if up.starts_with("PARTUUID=") {
        RootRefKind::PartUuid
    } else if up.starts_with("PARTLABEL=") {
        RootRefKind::PartLabel
    } else if v.starts_with("/dev/disk/by-") {
        RootRefKind::ByLink
    } else if let Some(d) = v.strip_prefix("/dev/") {
        let names = ["sd", "vd", "hd", "xvd", "nvme", "mmcblk"];
        if names.iter().any(|n| d.starts_with(n)) {
            RootRefKind::DeviceName
        } else if d.contains('/') {
            RootRefKind::Mapper
        } else {
            RootRefKind::Other
        }
    } else {
        RootRefKind::Other
    }
}

/// Where a command line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A `/etc/default/grub` or `/etc/default/grub.d/*.cfg` assignment (intent).
    DefaultGrub,
    /// A `linux`/`linuxefi`/`linux16` line of a grub.cfg.
    GrubCfg,
    /// A BLS entry (`/boot/loader/entries/*.conf`).
    Bls,
    /// `kernelopts` in `grubenv`.
    Grubenv,
    /// `/etc/kernel/cmdline`.
    KernelCmdline,
    /// A `kernel` line of legacy `menu.lst`.
    MenuLst,
    /// A line of FreeBSD `/boot/loader.conf`.
    FreebsdLoader,
    /// A line of OpenBSD `/etc/boot.conf`.
    OpenbsdBoot,
    /// A Type #1 entry read by systemd-boot (`loader/entries/*.conf` on the ESP/XBOOTLDR).
    SystemdBoot,
    /// The `.cmdline` section of a unified kernel image.
    Uki,
}

/// A referenced boot file and whether it exists in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootFile {
    /// The path as written.
    pub path: String,
    /// The guest path it was found at (as written, or under `/boot` when `/boot` is a separate
    /// partition and paths are relative to it); `None` when missing.
    pub found: Option<String>,
}

/// `root=` and how it refers to the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootRef {
    /// The value.
    pub value: String,
    /// Its kind.
    pub kind: RootRefKind,
}

/// One command line and its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CmdlineSource {
    /// What kind of place.
    pub kind: SourceKind,
    /// Guest file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Variable assigned (`GRUB_CMDLINE_LINUX`...), for shell-style files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// Menu entry title (grub.cfg, BLS, menu.lst).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Position among the entries of its file (grub.cfg: top-level entries, a submenu counts
    /// as one; BLS: sorted order; 0 = first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_index: Option<usize>,
    /// True when this is the entry the boot loader starts by default.
    pub default: bool,
    /// Kernel image referenced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<BootFile>,
    /// Initrd images referenced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub initrd: Vec<BootFile>,
    /// The arguments (kernel path excluded).
    pub cmdline: Cmdline,
    /// The last `root=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<RootRef>,
}

/// A line of an ESP grub.cfg that hands over elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redirect {
    /// Guest file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The line (`configfile $prefix/grub.cfg`, `search.fs_uuid ...`, `set prefix=...`).
    pub text: String,
}

/// Every command line found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommandLines {
    /// All sources, in the order files were read.
    pub sources: Vec<CmdlineSource>,
    /// ESP grub.cfg redirect lines.
    pub redirects: Vec<Redirect>,
    /// Final `/etc/default/grub` intent: `GRUB_CMDLINE_LINUX` + `GRUB_CMDLINE_LINUX_DEFAULT`.
    pub intent: Option<Cmdline>,
    /// The effective command line: the default entry of the first grub.cfg with entries,
    /// else the default BLS entry, else `/etc/kernel/cmdline`, `menu.lst`, else the intent.
    pub effective: Option<Cmdline>,
    /// Index into `sources` of the effective one (none when it is the intent).
    pub effective_source: Option<usize>,
}

impl CommandLines {
    /// The source the effective command line came from.
    pub fn effective_source(&self) -> Option<&CmdlineSource> {
        self.effective_source.and_then(|i| self.sources.get(i))
    }
}

/// Expands one shell word: quotes, `$VAR` / `${VAR}` from `vars`, backslash escapes; stops at
/// unquoted whitespace or a comment.
pub fn shell_value(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut dq = false;
    while i < cs.len() {
        match cs[i] {
            '\'' if !dq => {
                i += 1;
                while i < cs.len() && cs[i] != '\'' {
                    out.push(cs[i]);
                    i += 1;
                }
            }
            '"' => dq = !dq,
            '\\' if i + 1 < cs.len() => {
                i += 1;
                out.push(cs[i]);
            }
            '$' => {
                let (name, next) = if cs.get(i + 1) == Some(&'{') {
                    match cs[i + 2..].iter().position(|&c| c == '}') {
                        Some(p) => (cs[i + 2..i + 2 + p].iter().collect::<String>(), i + 3 + p),
                        None => (String::new(), cs.len()),
                    }
                } else {
                    let mut e = i + 1;
                    while e < cs.len() && (cs[e].is_ascii_alphanumeric() || cs[e] == '_') {
                        e += 1;
                    }
                    (cs[i + 1..e].iter().collect(), e)
                };
                if name.is_empty() && next == i + 1 {
                    out.push('$');
                    i += 1;
                    continue;
                }
                let name = name.split([':', '-']).next().unwrap_or("");
                out.push_str(vars.get(name).map(String::as_str).unwrap_or(""));
                i = next;
                continue;
            }
            c if c.is_whitespace() && !dq => break,
            '#' if !dq && i == 0 => break,
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `KEY=value` / `KEY+=value` assignments of a shell-style file (`export` allowed): (line,
/// key as written including a trailing `+`, raw value).
pub fn shell_assignments(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
        if l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let name = k.strip_suffix('+').unwrap_or(k);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        out.push((n + 1, k.to_string(), v.to_string()));
    }
    out
}

/// Splits a grub.cfg line into words, honouring quotes and backslashes.
fn grub_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut q: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (q, c) {
            (None, '\'' | '"') => {
                q = Some(c);
                any = true;
            }
            (Some(x), c) if c == x => q = None,
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// A source of `kind` at `file:line` with the arguments `args`, `root=` classified.
pub fn source(kind: SourceKind, file: &str, line: usize, args: &str) -> CmdlineSource {
    let cmdline = Cmdline::parse(args);
    let root = cmdline.value("root").last().map(|v| RootRef {
        value: v.to_string(),
        kind: root_ref_kind(v),
    });
    CmdlineSource {
        kind,
        file: file.to_string(),
        line,
        variable: None,
        entry: None,
        entry_index: None,
        default: false,
        kernel: None,
        initrd: Vec::new(),
        cmdline,
        root,
    }
}

fn boot_file(path: &str, exists: &dyn Fn(&str) -> Option<String>) -> BootFile {
    BootFile {
        path: path.to_string(),
        found: exists(path),
    }
}

/// Parses a grub.cfg: one source per `linux`/`linuxefi`/`linux16` line inside a menu entry.
/// The entry `set default=` selects (a number, a title or an id; the first otherwise) is
/// marked default.
pub fn parse_grub_cfg(
    file: &str,
    text: &str,
    exists: &dyn Fn(&str) -> Option<String>,
) -> Vec<CmdlineSource> {
    let mut out: Vec<CmdlineSource> = Vec::new();
    let mut default: Option<String> = None;
    // open blocks: Some((title, top-level index)) for menu entries/submenus, None for others
    let mut stack: Vec<Option<(String, usize)>> = Vec::new();
    let mut top = 0usize;
    let mut titles: Vec<(usize, String, Option<String>)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let t = raw.trim();
        let w = grub_words(t);
        let Some(cmd) = w.first() else { continue };
        if cmd.starts_with('#') {
            continue;
        }
        match cmd.as_str() {
            "set" => {
                if let Some(v) = w.get(1).and_then(|a| a.strip_prefix("default=")) {
                    default.get_or_insert_with(|| v.to_string());
                }
            }
            "menuentry" | "submenu" => {
                let title = w.get(1).cloned().unwrap_or_default();
                let id = w
                    .iter()
                    .position(|a| a == "--id" || a == "$menuentry_id_option")
                    .and_then(|p| w.get(p + 1).cloned());
                let parent = stack.iter().rev().flatten().next().map(|e| e.1);
                let idx = match parent {
                    Some(p) => p,
                    None => {
                        titles.push((top, title.clone(), id));
                        top += 1;
                        top - 1
                    }
                };
                if t.ends_with('{') {
                    stack.push(Some((title, idx)));
                }
            }
            "}" => {
                stack.pop();
            }
            "linux" | "linuxefi" | "linux16" => {
                let Some((title, idx)) = stack.iter().rev().flatten().next().cloned() else {
                    continue;
                };
                let path = w.get(1).cloned().unwrap_or_default();
                let args = w.get(2..).map(|a| a.join(" ")).unwrap_or_default();
                let mut s = source(SourceKind::GrubCfg, file, n + 1, &args);
                s.entry = Some(title);
                s.entry_index = Some(idx);
                s.kernel = Some(boot_file(&path, exists));
                out.push(s);
            }
            "initrd" | "initrdefi" | "initrd16" => {
                let in_entry = stack.iter().any(Option::is_some);
                if let Some(last) = out.last_mut().filter(|_| in_entry) {
                    last.initrd = w[1..].iter().map(|p| boot_file(p, exists)).collect();
                }
            }
            _ => {
                if t.ends_with('{') {
                    stack.push(None);
                } else if t == "fi" || t == "done" {
                    // shell-style blocks carry no braces
                }
            }
        }
    }
    let want = match default.as_deref() {
        None | Some("") | Some("saved") => 0,
        Some(d) if d.starts_with('$') => 0,
        Some(d) => {
            let first = d.split('>').next().unwrap_or(d);
            first.parse::<usize>().ok().unwrap_or_else(|| {
                titles
                    .iter()
                    .find(|(_, t, id)| t == first || id.as_deref() == Some(first))
                    .map_or(0, |t| t.0)
            })
        }
    };
    if let Some(s) = out.iter_mut().find(|s| s.entry_index == Some(want)) {
        s.default = true;
    }
    out
}

/// Parses one BLS entry; `kernelopts` expands `$kernelopts`.
pub fn parse_bls(
    file: &str,
    text: &str,
    kernelopts: Option<&str>,
    exists: &dyn Fn(&str) -> Option<String>,
) -> CmdlineSource {
    let env: BTreeMap<String, String> = kernelopts
        .map(|k| ("kernelopts".to_string(), k.to_string()))
        .into_iter()
        .collect();
    parse_bls_env(file, text, &env, exists)
}

/// Parses one BLS entry as GRUB's blscfg does: `$variables` in `options` and `initrd` expanded
/// from the GRUB environment `env` (unset ones vanish).
pub fn parse_bls_env(
    file: &str,
    text: &str,
    env: &BTreeMap<String, String>,
    exists: &dyn Fn(&str) -> Option<String>,
) -> CmdlineSource {
    let mut title = None;
    let mut kernel = None;
    let mut initrd = Vec::new();
    let mut options: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        let (k, v) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
        let v = v.trim();
        match k {
            "title" => title = Some(v.to_string()),
            "linux" | "efi" => kernel = Some(boot_file(v, exists)),
            "initrd" => initrd.extend(
                super::bls::expand(v, env)
                    .split_whitespace()
                    .map(|p| boot_file(p, exists)),
            ),
            "options" => {
                let o = match options.take() {
                    Some((first, s)) => (first, s + " " + v),
                    None => (n + 1, v.to_string()),
                };
                options = Some(o);
            }
            _ => {}
        }
    }
    let (line, opts) = options.unwrap_or((1, String::new()));
    let opts = super::bls::expand(&opts, env);
    let mut s = source(SourceKind::Bls, file, line, &opts);
    s.entry = title;
    s.kernel = kernel;
    s.initrd = initrd;
    s
}

/// Parses legacy `menu.lst`: one source per `kernel` line, the `default N` entry marked.
pub fn parse_menu_lst(
    file: &str,
    text: &str,
    exists: &dyn Fn(&str) -> Option<String>,
) -> Vec<CmdlineSource> {
    let mut out: Vec<CmdlineSource> = Vec::new();
    let mut default = 0usize;
    let mut title: Option<String> = None;
    let mut idx: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        let (k, v) = l.split_once([' ', '\t', '=']).unwrap_or((l, ""));
        let v = v.trim();
        match k {
            "default" => default = v.parse().unwrap_or(0),
            "title" => {
                title = Some(v.to_string());
                idx = Some(idx.map_or(0, |i| i + 1));
            }
            "kernel" => {
                let (path, args) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
                let mut s = source(SourceKind::MenuLst, file, n + 1, args);
                s.entry = title.clone();
                s.entry_index = idx;
                s.kernel = Some(boot_file(path, exists));
                out.push(s);
            }
            "initrd" => {
                if let Some(s) = out.last_mut() {
                    s.initrd = vec![boot_file(v, exists)];
                }
            }
            _ => {}
        }
    }
    if let Some(s) = out.iter_mut().find(|s| s.entry_index == Some(default)) {
        s.default = true;
    }
    out
}

fn sorted_files(list: &dyn Fn(&str) -> Vec<String>, dir: &str, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = list(dir)
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    v.sort();
    v
}

/// Gathers every command line source. `read` reads a guest text file, `list` lists the names
/// in a guest directory, `exists` says where a boot file referenced by a loader is found.
pub fn gather(
    read: &dyn Fn(&str) -> Option<String>,
    list: &dyn Fn(&str) -> Vec<String>,
    exists: &dyn Fn(&str) -> Option<String>,
) -> CommandLines {
    let mut out = CommandLines::default();
    // /etc/default/grub, then grub.d/*.cfg in order (later assignments override).
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut files = vec!["/etc/default/grub".to_string()];
    files.extend(sorted_files(list, "/etc/default/grub.d", ".cfg"));
    let mut seen_intent = false;
    for f in &files {
        let Some(text) = read(f) else { continue };
        for (line, key, value) in shell_assignments(&text) {
            let (name, append) = match key.strip_suffix('+') {
                Some(k) => (k.to_string(), true),
                None => (key.clone(), false),
            };
            let mut v = shell_value(&value, &vars);
            if append {
                v = vars.get(&name).cloned().unwrap_or_default() + &v;
            }
            vars.insert(name.clone(), v.clone());
            if name == "GRUB_CMDLINE_LINUX" || name == "GRUB_CMDLINE_LINUX_DEFAULT" {
                seen_intent = true;
                let mut s = source(SourceKind::DefaultGrub, f, line, &v);
                s.variable = Some(name);
                out.sources.push(s);
            }
        }
    }
    if seen_intent {
        let get = |k: &str| vars.get(k).map_or("", String::as_str);
        let both = format!(
            "{} {}",
            get("GRUB_CMDLINE_LINUX"),
            get("GRUB_CMDLINE_LINUX_DEFAULT")
        );
        out.intent = Some(Cmdline::parse(&both));
    }
    // Generated grub.cfg files, then ESP ones.
    let mut cfgs = vec![
        "/boot/grub/grub.cfg".to_string(),
        "/boot/grub2/grub.cfg".to_string(),
    ];
    let mut esp: Vec<String> = Vec::new();
    for d in list("/boot/efi/EFI") {
        let dir = format!("/boot/efi/EFI/{d}");
        for n in list(&dir) {
            let l = n.to_ascii_lowercase();
            if l == "grub.cfg" || l == "bootx64.cfg" || l == "bootaa64.cfg" {
                esp.push(format!("{dir}/{n}"));
            }
        }
    }
    esp.sort();
    cfgs.extend(esp.iter().cloned());
    let mut grub_default = None;
    let mut saw_blscfg = false;
    let mut cfg_kernelopts: Option<String> = None;
    for f in &cfgs {
        let Some(text) = read(f) else { continue };
        for line in text.lines() {
            let w = grub_words(line.trim());
            match w.first().map(String::as_str) {
                Some("blscfg") => saw_blscfg = true,
                Some("set") => {
                    if let Some(v) = w.get(1).and_then(|a| a.strip_prefix("kernelopts=")) {
                        cfg_kernelopts.get_or_insert_with(|| v.to_string());
                    }
                }
                _ => {}
            }
        }
        if esp.contains(f) {
            for (n, line) in text.lines().enumerate() {
                let t = line.trim();
                let w = t.split_whitespace().next().unwrap_or("");
                let redirect = matches!(
                    w,
                    "configfile"
                        | "source"
                        | "search"
                        | "search.fs_uuid"
                        | "search.fs_label"
                        | "search.file"
                ) || t.starts_with("set prefix=")
                    || t.starts_with("set root=");
                if redirect {
                    out.redirects.push(Redirect {
                        file: f.clone(),
                        line: n + 1,
                        text: t.to_string(),
                    });
                }
            }
        }
        let parsed = parse_grub_cfg(f, &text, exists);
        if grub_default.is_none() {
            grub_default = parsed
                .iter()
                .position(|s| s.default)
                .map(|p| p + out.sources.len());
        }
        out.sources.extend(parsed);
    }
    // The GRUB environment block (RHEL 8: `kernelopts`), then BLS entries as blscfg lists
    // them (newest version first; `saved_entry` names the default).
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for f in [
        "/boot/grub2/grubenv",
        "/boot/grub/grubenv",
        "/boot/efi/EFI/redhat/grubenv",
    ] {
        let Some(text) = read(f) else { continue };
        let Some(vars) = super::bls::parse_grubenv(&text) else {
            continue;
        };
        if let Some(v) = vars.get("kernelopts") {
            let line = text
                .lines()
                .position(|l| l.starts_with("kernelopts="))
                .map_or(1, |n| n + 1);
            out.sources.push(source(SourceKind::Grubenv, f, line, v));
        }
        for (k, v) in vars {
            env.entry(k).or_insert(v);
        }
    }
    // RHEL 8's grub.cfg sets kernelopts itself when grubenv lacks it.
    if let Some(k) = cfg_kernelopts {
        env.entry("kernelopts".into()).or_insert(k);
    }
    let saved_entry = env.get("saved_entry").cloned();
    let mut bls: Vec<(String, Option<String>)> = Vec::new();
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    for f in sorted_files(list, "/boot/loader/entries", ".conf")
        .into_iter()
        .take(super::bls::MAX_BLS_ENTRIES)
    {
        let Some(text) = read(&f) else { continue };
        bls.push((f.clone(), super::bls::entry_version(&text)));
        texts.insert(f, text);
    }
    super::bls::sort_newest_first(&mut bls);
    let mut bls_default = None;
    let first_bls = out.sources.len();
    for (i, (f, _)) in bls.iter().enumerate() {
        let Some(text) = texts.get(f) else { continue };
        let mut s = parse_bls_env(f, text, &env, exists);
        s.entry_index = Some(i);
        let stem = f.rsplit('/').next().unwrap_or("").trim_end_matches(".conf");
        let wanted = saved_entry.as_deref();
        if wanted == Some(stem)
            || wanted.is_some_and(|w| s.entry.as_deref() == Some(w))
            || wanted.and_then(|w| w.parse::<usize>().ok()) == Some(i)
        {
            bls_default.get_or_insert(out.sources.len());
        }
        out.sources.push(s);
    }
    if bls_default.is_none() && out.sources.len() > first_bls {
        bls_default = Some(first_bls);
    }
    if let Some(i) = bls_default {
        out.sources[i].default = true;
    }
    let mut kernel_cmdline = None;
    if let Some(text) = read("/etc/kernel/cmdline") {
        let joined = text.lines().collect::<Vec<_>>().join(" ");
        kernel_cmdline = Some(out.sources.len());
        let f = "/etc/kernel/cmdline";
        out.sources
            .push(source(SourceKind::KernelCmdline, f, 1, &joined));
    }
    let mut menu_default = None;
    for f in ["/boot/grub/menu.lst", "/boot/grub/grub.conf"] {
        let Some(text) = read(f) else { continue };
        let parsed = parse_menu_lst(f, &text, exists);
        if menu_default.is_none() {
            menu_default = parsed
                .iter()
                .position(|s| s.default)
                .map(|p| p + out.sources.len());
        }
        out.sources.extend(parsed);
    }
    for (f, kind) in [
        ("/boot/loader.conf", SourceKind::FreebsdLoader),
        ("/etc/boot.conf", SourceKind::OpenbsdBoot),
    ] {
        let Some(text) = read(f) else { continue };
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let mut s = source(kind, f, n + 1, "");
            s.cmdline = Cmdline {
                raw: l.to_string(),
                args: if kind == SourceKind::FreebsdLoader {
                    vec![l.replace('"', "")]
                } else {
                    l.split_whitespace().map(str::to_string).collect()
                },
            };
            out.sources.push(s);
        }
    }
    // With `blscfg` in grub.cfg the BLS entries are the menu GRUB shows.
    let (first, second) = if saw_blscfg {
        (bls_default, grub_default)
    } else {
        (grub_default, bls_default)
    };
    let eff = first.or(second).or(kernel_cmdline).or(menu_default);
    out.effective_source = eff;
    out.effective = eff
        .map(|i| out.sources[i].cmdline.clone())
        .or_else(|| out.intent.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_split_has_value() {
        let c = Cmdline::parse(
            r#"root=UUID=abc ro console=tty1 console=ttyS0,115200n8 quiet foo="a b" "#,
        );
        assert_eq!(c.args.len(), 6);
        assert!(c.has("quiet"));
        assert!(c.has("console"));
        assert!(c.has("console=tty1"));
        assert!(!c.has("console=ttyS0"));
        assert_eq!(c.value("console"), ["tty1", "ttyS0,115200n8"]);
        assert_eq!(c.value("foo"), ["a b"]);
        assert_eq!(c.value("root"), ["UUID=abc"]);
        assert!(Cmdline::parse("").args.is_empty());
        assert_eq!(Cmdline::parse(r#"x=""#).args, ["x="]);
    }

    #[test]
    fn root_kinds() {
        assert_eq!(root_ref_kind("UUID=1"), RootRefKind::Uuid);
        assert_eq!(root_ref_kind("PARTUUID=1"), RootRefKind::PartUuid);
        assert_eq!(root_ref_kind("LABEL=r"), RootRefKind::Label);
        assert_eq!(root_ref_kind("/dev/sda1"), RootRefKind::DeviceName);
        assert_eq!(root_ref_kind("/dev/nvme0n1p2"), RootRefKind::DeviceName);
        assert_eq!(root_ref_kind("/dev/mapper/rhel-root"), RootRefKind::Mapper);
        assert_eq!(root_ref_kind("/dev/disk/by-uuid/x"), RootRefKind::ByLink);
        assert_eq!(root_ref_kind("zfs:rpool"), RootRefKind::Other);
    }

    #[test]
    fn shell_quoting_and_expansion() {
        let mut vars = BTreeMap::new();
        vars.insert("A".to_string(), "x y".to_string());
        assert_eq!(shell_value(r#""$A z""#, &vars), "x y z");
        assert_eq!(shell_value(r#"'$A'"#, &vars), "$A");
        assert_eq!(shell_value(r#""${A} q" # comment"#, &vars), "x y q");
        assert_eq!(shell_value("plain # c", &vars), "plain");
        assert_eq!(shell_value(r#""unterminated"#, &vars), "unterminated");
        assert_eq!(shell_value("$", &vars), "$");
        assert_eq!(shell_value("${", &vars), "");
        assert_eq!(shell_value("$UNSET", &vars), "");
        let a = shell_assignments("export A=1\n# B=2\nC+=\"x\"\nnot an assignment\n=3\n");
        assert_eq!(a.len(), 2);
        assert_eq!(a[1], (3, "C+".to_string(), "\"x\"".to_string()));
    }

    type Reader = Box<dyn Fn(&str) -> Option<String>>;
    type Lister = Box<dyn Fn(&str) -> Vec<String>>;

    fn files(map: &'static [(&'static str, &'static str)]) -> (Reader, Lister) {
        let read = move |p: &str| {
            map.iter()
                .find(|(k, _)| *k == p)
                .map(|(_, v)| v.to_string())
        };
        let list = move |d: &str| {
            map.iter()
                .filter_map(|(k, _)| k.strip_prefix(d)?.strip_prefix('/'))
                .map(|r| r.split('/').next().unwrap_or("").to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        (Box::new(read), Box::new(list))
    }

    const GRUB_CFG: &str = r#"
set default="1"
if [ x"${feature_menuentry_id}" = xy ]; then
  menuentry_id_option="--id"
fi
function load_video {
  insmod all_video
}
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-X' {
	linux	/boot/vmlinuz-6.1 root=UUID=abc ro  console=tty0 console=ttyS0,115200 earlyprintk=ttyS0 rootdelay=300
	initrd	/boot/initrd.img-6.1
}
submenu 'Advanced options' $menuentry_id_option 'adv' {
	menuentry 'Debian, 6.1' {
		linux	/boot/vmlinuz-6.1 root=/dev/sda1 ro single
		initrd	/boot/initrd.img-6.1
	}
}
"#;

    #[test]
    fn grub_cfg_entries_and_default() {
        let exists = |p: &str| (p == "/boot/vmlinuz-6.1").then(|| p.to_string());
        let s = parse_grub_cfg("/boot/grub/grub.cfg", GRUB_CFG, &exists);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].line, 10);
        assert_eq!(s[0].entry.as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(s[0].cmdline.value("console"), ["tty0", "ttyS0,115200"]);
        assert_eq!(s[0].root.as_ref().unwrap().kind, RootRefKind::Uuid);
        assert!(s[0].kernel.as_ref().unwrap().found.is_some());
        assert_eq!(s[0].initrd[0].found, None);
        assert!(!s[0].default);
        // default="1" is the submenu (second top-level entry)
        assert!(s[1].default);
        assert_eq!(s[1].entry_index, Some(1));
        assert_eq!(s[1].root.as_ref().unwrap().kind, RootRefKind::DeviceName);
        // by id
        let by_id = GRUB_CFG.replace("default=\"1\"", "default=\"gnulinux-simple-X\"");
        assert!(parse_grub_cfg("g", &by_id, &exists)[0].default);
        // negative: garbage and unbalanced braces don't panic
        assert!(parse_grub_cfg("x", "}}}\nlinux /x\nmenuentry\n{", &exists).is_empty());
        let s = parse_grub_cfg("x", "menuentry 'a' {\nlinux\n", &exists);
        assert_eq!(s[0].kernel.as_ref().unwrap().path, "");
    }

    #[test]
    fn gather_all_sources() {
        static MAP: &[(&str, &str)] = &[
            (
                "/etc/default/grub",
                "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"console=tty1\"\n",
            ),
            (
                "/etc/default/grub.d/50-cloudimg-settings.cfg",
                "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT console=ttyS0 'x'\"\n",
            ),
            (
                "/boot/efi/EFI/debian/grub.cfg",
                "search.fs_uuid abc root hd0,gpt2\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n",
            ),
            (
                "/boot/grub2/grubenv",
                "# GRUB Environment Block\nsaved_entry=abc-5.14\nkernelopts=root=/dev/mapper/rhel-root ro crashkernel=auto\n",
            ),
            (
                "/boot/loader/entries/abc-5.14.conf",
                "title RHEL (5.14)\nversion 5.14\nlinux /vmlinuz-5.14\ninitrd /initramfs-5.14.img $tuned_initrd\noptions $kernelopts console=ttyS0\n",
            ),
            (
                "/boot/loader/entries/abc-9-rescue.conf",
                "title rescue\nlinux /vmlinuz-0-rescue\noptions root=UUID=x\n",
            ),
            ("/etc/kernel/cmdline", "root=UUID=z ro\n"),
            (
                "/boot/grub/menu.lst",
                "default 0\ntitle OL\n root (hd0,0)\n kernel /vmlinuz-2.6.32 ro root=LABEL=/ numa=off\n initrd /initrd-2.6.32.img\n",
            ),
            ("/boot/loader.conf", "console=\"comconsole\"\n"),
            ("/etc/boot.conf", "set tty com0\n"),
        ];
        let (read, list) = files(MAP);
        let exists = |p: &str| p.starts_with("/vmlinuz").then(|| format!("/boot{p}"));
        let c = gather(&*read, &*list, &exists);
        let intent = c.intent.clone().unwrap();
        assert_eq!(
            intent.args,
            ["console=tty1", "quiet", "console=ttyS0", "'x'"]
        );
        let dg: Vec<_> = c
            .sources
            .iter()
            .filter(|s| s.kind == SourceKind::DefaultGrub)
            .map(|s| (s.file.as_str(), s.line))
            .collect();
        assert_eq!(dg.len(), 3);
        assert_eq!(dg[2], ("/etc/default/grub.d/50-cloudimg-settings.cfg", 1));
        assert_eq!(c.redirects.len(), 3);
        let bls = c
            .sources
            .iter()
            .find(|s| s.kind == SourceKind::Bls && s.default)
            .unwrap();
        assert_eq!(bls.file, "/boot/loader/entries/abc-5.14.conf");
        assert_eq!(bls.line, 5);
        assert_eq!(bls.cmdline.value("console"), ["ttyS0"]);
        assert!(bls.cmdline.has("crashkernel"));
        assert_eq!(bls.root.as_ref().unwrap().kind, RootRefKind::Mapper);
        assert_eq!(
            bls.kernel.as_ref().unwrap().found.as_deref(),
            Some("/boot/vmlinuz-5.14")
        );
        assert_eq!(bls.initrd.len(), 1);
        // no grub.cfg linux lines: the BLS default is effective
        assert_eq!(c.effective.as_ref(), Some(&bls.cmdline));
        assert_eq!(c.effective_source().unwrap().file, bls.file);
        let menu = c
            .sources
            .iter()
            .find(|s| s.kind == SourceKind::MenuLst)
            .unwrap();
        assert!(menu.default && menu.cmdline.has("numa=off"));
        assert_eq!(menu.initrd[0].path, "/initrd-2.6.32.img");
        assert!(c
            .sources
            .iter()
            .any(|s| s.kind == SourceKind::FreebsdLoader && s.cmdline.has("console=comconsole")));
        assert!(c
            .sources
            .iter()
            .any(|s| s.kind == SourceKind::OpenbsdBoot && s.cmdline.raw == "set tty com0"));
        assert!(c
            .sources
            .iter()
            .any(|s| s.kind == SourceKind::KernelCmdline));
    }

    #[test]
    fn intent_only_when_nothing_generated() {
        static MAP: &[(&str, &str)] = &[("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"a b\"\n")];
        let (read, list) = files(MAP);
        let c = gather(&*read, &*list, &|_| None);
        assert_eq!(c.effective.unwrap().args, ["a", "b"]);
        assert_eq!(c.effective_source, None);
    }
}
