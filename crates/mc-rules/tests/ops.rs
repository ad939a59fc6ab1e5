//! `mc-rules` honours the operational contract shared by every binary.

mc_testkit::ops_service_contract!(
    mc_rules::run,
    mc_testkit::rules_config,
    "mc-rules",
    "MC_RULES_ADDR"
);
