//! A pass started from inside rayon's global pool, with every worker of that pool busy in the
//! caller, still finishes: the pass runs its parallel work on a pool of its own.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use vhdprep_checksum::{checksum, Options};

#[test]
fn a_pass_inside_a_saturated_global_pool_finishes() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .expect("first use of the global pool in this test binary");
    let data: Vec<u8> = (0..(24u32 << 20)).map(|i| (i % 251) as u8).collect();
    let want = checksum(&data, Path::new("x"), &Options::all(), &mut ()).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The only global worker runs the pass and blocks in it.
        let got = rayon::scope(|_| checksum(&data, Path::new("x"), &Options::all(), &mut ()));
        let _ = tx.send(got.map(|d| d == want));
    });
    let same = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the pass finished (no deadlock)")
        .unwrap();
    assert!(same);
}
