//! `mc-worker` honours the operational contract shared by every binary.

mc_testkit::ops_service_contract!(
    mc_worker::run,
    mc_testkit::worker_config,
    "mc-worker",
    "MC_WORKER_ADDR"
);
