//! Through a real nginx: gantry rewrites the upstream file nginx.conf includes and reloads
//! nginx (old workers finish their requests), and counts each pool's answers in the access
//! log. A healthy canary drops no request under wrk's load; a canary failing 5% is rolled back
//! and the file gives the stable all of the traffic again.

use super::site::{
    CANARY, nginx_site, pipeline, promoted_cleanly, rolled_back_by_the_test, run_under_load, serial,
};

#[test]
fn a_healthy_canary_through_nginx_reloads_drops_no_request() {
    let _serial = serial();
    let site = nginx_site(0);
    site.test
        .write("pipeline.toml", &pipeline(&site, "canary", CANARY));
    let (run, load) = run_under_load(&site, 6, true);
    let predicate = &promoted_cleanly(&site, &run, &load);
    let upstream = site.test.read("front/upstream.conf");
    assert!(
        upstream.contains(&format!("server 127.0.0.1:{} down;", site.blue.port)),
        "{upstream}"
    );
    assert_eq!(
        predicate["traffic"]["nginx"]["accessLog"],
        "front/access.log"
    );
    let accepted: std::collections::BTreeSet<u64> =
        (predicate["decisions"].as_array().expect("decisions").iter())
            .filter(|decision| decision["outcome"] == "accept")
            .filter_map(|decision| decision["weight"].as_u64())
            .collect();
    assert_eq!(accepted, [10, 50].into(), "accepted at 10% and 50%");
    eprintln!(
        "nginx canary: {} requests at {:.0}/s, none failed; {} served by the canary before 100%",
        load.requests, load.per_second, predicate["canaryRequests"]
    );
}

#[test]
fn a_canary_failing_5_percent_behind_nginx_is_rolled_back() {
    let _serial = serial();
    let site = nginx_site(5);
    site.test
        .write("pipeline.toml", &pipeline(&site, "canary", CANARY));
    let (run, load) = run_under_load(&site, 4, false);
    let predicate = &rolled_back_by_the_test(&site, &run);
    let served = predicate["canaryRequests"].as_u64().expect("count");
    assert!(served > 0 && served < 5000, "{served}");
    eprintln!(
        "nginx failing canary: rolled back after it served {served} requests; {} requests in all, {} failed",
        load.requests, load.failed
    );
}
