//! The signature schemes: which sender, which digest, which headers, and what they promise.

use serde::Deserialize;

/// The sender a hook expects, as written in `provider = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    Netbox,
    Github,
    Gitlab,
    StandardWebhooks,
    Stripe,
    Slack,
    Shopify,
    Hmac,
}

impl Provider {
    pub const ALL: [Provider; 8] = [
        Provider::Netbox,
        Provider::Github,
        Provider::Gitlab,
        Provider::StandardWebhooks,
        Provider::Stripe,
        Provider::Slack,
        Provider::Shopify,
        Provider::Hmac,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::Netbox => "netbox",
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::StandardWebhooks => "standard-webhooks",
            Provider::Stripe => "stripe",
            Provider::Slack => "slack",
            Provider::Shopify => "shopify",
            Provider::Hmac => "hmac",
        }
    }
}

/// Digest used by the generic `hmac` provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

/// How the generic `hmac` provider's digest is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

/// A fully specified signature scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    Netbox,
    Github,
    Gitlab,
    StandardWebhooks,
    Stripe,
    Slack,
    Shopify,
    Hmac {
        /// Lower-case header name.
        header: String,
        algorithm: Algorithm,
        encoding: Encoding,
        prefix: String,
        delivery_id_header: Option<String>,
    },
}

/// Where a scheme's delivery id (the key for de-duplication) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryIdSource {
    None,
    /// A top-level string field of the JSON body (Stripe's event `id`, Slack's `event_id`).
    BodyField(&'static str),
}

impl Scheme {
    /// The scheme of a named provider; `Provider::Hmac` gets sha256/hex defaults and no header,
    /// which config always fills in.
    pub fn from_provider(p: Provider) -> Scheme {
        match p {
            Provider::Netbox => Scheme::Netbox,
            Provider::Github => Scheme::Github,
            Provider::Gitlab => Scheme::Gitlab,
            Provider::StandardWebhooks => Scheme::StandardWebhooks,
            Provider::Stripe => Scheme::Stripe,
            Provider::Slack => Scheme::Slack,
            Provider::Shopify => Scheme::Shopify,
            Provider::Hmac => Scheme::Hmac {
                header: "x-signature".into(),
                algorithm: Algorithm::Sha256,
                encoding: Encoding::Hex,
                prefix: String::new(),
                delivery_id_header: None,
            },
        }
    }

    pub fn provider(&self) -> Provider {
        match self {
            Scheme::Netbox => Provider::Netbox,
            Scheme::Github => Provider::Github,
            Scheme::Gitlab => Provider::Gitlab,
            Scheme::StandardWebhooks => Provider::StandardWebhooks,
            Scheme::Stripe => Provider::Stripe,
            Scheme::Slack => Provider::Slack,
            Scheme::Shopify => Provider::Shopify,
            Scheme::Hmac { .. } => Provider::Hmac,
        }
    }

    /// Whether the signed content includes a timestamp, so a replay window applies.
    pub fn has_timestamp(&self) -> bool {
        matches!(
            self,
            Scheme::StandardWebhooks | Scheme::Stripe | Scheme::Slack
        )
    }

    pub fn delivery_id_source(&self) -> DeliveryIdSource {
        match self {
            Scheme::Stripe => DeliveryIdSource::BodyField("id"),
            Scheme::Slack => DeliveryIdSource::BodyField("event_id"),
            _ => DeliveryIdSource::None,
        }
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        match self {
            Scheme::Netbox => Algorithm::Sha512,
            Scheme::Hmac { algorithm, .. } => *algorithm,
            _ => Algorithm::Sha256,
        }
    }
}
