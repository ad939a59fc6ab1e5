//! `mc-relay` honours the operational contract shared by every binary.

mc_testkit::ops_service_contract!(
    mc_relay::run,
    mc_testkit::relay_config,
    "mc-relay",
    "MC_RELAY_ADDR"
);
