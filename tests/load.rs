//! The load generator's smoke mode: a few calls for a few seconds through
//! the switch and through the plain UDP baseline, nothing lost. It keeps
//! the tool working; it asserts no timing.

use std::time::Duration;

use callswitch::loadgen::{relay_table, run_overload, run_quic, run_setup, run_udp, LoadOptions};

fn options() -> LoadOptions {
    LoadOptions {
        switch_bin: env!("CARGO_BIN_EXE_callswitch").into(),
        calls: 3,
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(2),
        switch_cpu: None,
        baseline: true,
        plugins: 0,
        progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_smoke_loses_nothing() {
    let opts = options();
    let udp = run_udp(&opts).await.unwrap();
    let quic = run_quic(&opts).await.unwrap();
    println!("{}", relay_table(&[udp.clone(), quic.clone()]));
    for r in [&udp, &quic] {
        // 3 calls x 2 legs x 50 frames/s x 2 s.
        assert!(r.offered_per_s > 0.0, "{r:?}");
        assert_eq!(r.loss_pct, 0.0, "{r:?}");
        assert!(r.latency_p50_us > 0, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_smoke_completes_calls_with_a_plugin() {
    let mut opts = options();
    opts.plugins = 1;
    let f = run_setup(&opts, 2).await.unwrap();
    println!("{f:?}");
    assert!(f.setups > 0, "{f:?}");
    assert_eq!(f.failures, 0, "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_smoke_refuses_new_calls_and_keeps_the_calls_in_progress() {
    let opts = options();
    let f = run_overload(&opts, 2, 0).await.unwrap();
    println!("{}", relay_table(&[f.quiet.clone(), f.pressed.clone()]));
    println!("{f:?}");
    // Every dial beyond the limit is refused as overloaded...
    assert!(f.refused > 0, "{f:?}");
    assert_eq!((f.admitted, f.other_errors), (0, 0), "{f:?}");
    // ...and the calls in progress lose nothing, alone or pressed.
    for r in [&f.quiet, &f.pressed] {
        assert!(r.offered_per_s > 0.0, "{r:?}");
        assert_eq!(r.loss_pct, 0.0, "{r:?}");
    }
}
