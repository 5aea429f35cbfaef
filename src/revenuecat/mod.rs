//! RevenueCat REST API v2 client, models and mapping.
