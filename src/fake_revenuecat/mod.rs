//! A stateful fake of RevenueCat REST API v2 for dev, tests, demo and benches.
