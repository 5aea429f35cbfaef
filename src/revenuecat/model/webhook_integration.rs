//! Webhook integrations (`/projects/{p}/integrations/webhooks`), used to provision the webhook
//! that points RevenueCat at rcsync.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use super::Environment;

/// A webhook integration as RevenueCat returns it. `authorization_header` is write-only and
/// never comes back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookIntegration {
    pub id: String,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub url: String,
    /// `None` = both production and sandbox.
    #[serde(default)]
    pub environment: Option<Environment>,
    /// Lower-case event types (`initial_purchase`, ...); `None` = all events.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// `None` = all apps of the project.
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

fn expose<S: Serializer>(value: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(secret) => serializer.serialize_some(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

fn expose_update<S: Serializer>(
    value: &Option<Option<SecretString>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(inner) => expose(inner, serializer),
        None => serializer.serialize_none(),
    }
}

/// Body of `POST /projects/{p}/integrations/webhooks`. RevenueCat rejects unknown body
/// fields, so only documented ones exist and absent options are not sent at all.
#[derive(Debug, Clone, Serialize)]
pub struct NewWebhookIntegration {
    pub name: String,
    pub url: String,
    /// Sent verbatim as the `Authorization` header of every delivery (`Bearer <secret>`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub authorization_header: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

/// Body of `POST /projects/{p}/integrations/webhooks/{id}` (update is a POST, not PATCH).
/// Outer `None` = leave unchanged (not sent); `Some(None)` = set to null.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WebhookIntegrationUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_update"
    )]
    pub authorization_header: Option<Option<SecretString>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Option<Environment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<Option<String>>,
}

/// Answer of a DELETE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletedObject {
    #[serde(default)]
    pub object: Option<String>,
    pub id: String,
    #[serde(default)]
    pub deleted_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_sends_only_documented_fields_and_debug_redacts() {
        let body = NewWebhookIntegration {
            name: "rcsync".into(),
            url: "https://example.com/hook".into(),
            authorization_header: Some(SecretString::from("Bearer s3cret")),
            environment: None,
            event_types: None,
            app_id: None,
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name":"rcsync","url":"https://example.com/hook","authorization_header":"Bearer s3cret"})
        );
        assert!(!format!("{body:?}").contains("s3cret"));
    }

    #[test]
    fn update_distinguishes_unchanged_from_null() {
        let update = WebhookIntegrationUpdate {
            environment: Some(None),
            event_types: Some(Some(vec!["initial_purchase".into()])),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            serde_json::json!({"environment": null, "event_types": ["initial_purchase"]})
        );
    }

    #[test]
    fn integration_parses_null_environment() {
        let json = r#"{"object":"webhook_integration","id":"wh1","project_id":"p","name":"n","url":"u","environment":null,"event_types":null,"app_id":null,"created_at":1}"#;
        let integration: WebhookIntegration = serde_json::from_str(json).unwrap();
        assert_eq!(integration.environment, None);
    }
}
