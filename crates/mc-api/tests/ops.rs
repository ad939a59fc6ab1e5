//! `mc-api` honours the operational contract shared by every binary.

mc_testkit::ops_service_contract!(mc_api::run, mc_testkit::api_config, "mc-api", "MC_API_ADDR");
