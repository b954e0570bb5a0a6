//! The signature schemes: which sender, which digest, which headers, and what they promise.

use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer};
use strum::{EnumDiscriminants, EnumIter, EnumString, IntoStaticStr, VariantNames};

impl Provider {
    /// The name as written in the config and on the command line, e.g. `standard-webhooks`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Digest used by the generic `hmac` provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, EnumString, IntoStaticStr, VariantNames)]
#[strum(serialize_all = "lowercase")]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

/// How the generic `hmac` provider's digest is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, EnumString, IntoStaticStr, VariantNames)]
#[strum(serialize_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

/// Deserializes by the strum names, with serde's own "unknown variant …, expected one of …" error.
fn by_name<'de, D: Deserializer<'de>, T: FromStr + VariantNames>(d: D) -> Result<T, D::Error> {
    let name = String::deserialize(d)?;
    name.parse()
        .map_err(|_| de::Error::unknown_variant(&name, T::VARIANTS))
}

macro_rules! deserialize_by_name {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                by_name(d)
            }
        }
    )*};
}
deserialize_by_name!(Provider, Algorithm, Encoding);

/// A fully specified signature scheme. Its variants, without their data, are [`Provider`]: the
/// sender a hook expects, as written in `provider = "..."`, named once here by strum
/// (`serialize_all`) for config, the CLI, the fuzz targets and the bench.
#[derive(Debug, Clone, PartialEq, Eq, EnumDiscriminants)]
#[strum_discriminants(name(Provider))]
#[strum_discriminants(doc = "The sender a hook expects, as written in `provider = \"...\"`.")]
#[strum_discriminants(derive(EnumIter, EnumString, IntoStaticStr, VariantNames))]
#[strum_discriminants(strum(serialize_all = "kebab-case"))]
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
        /// Lower-case name of a header that names the event type, when the sender sends one.
        event_header: Option<String>,
    },
}

/// Where a scheme's event type (`push`, `pull_request.opened`, `invoice.paid`) comes from: the one
/// value the log records and sinks route and filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource<'a> {
    None,
    /// A header; `action`: a top-level string of the body appended after a dot when there is one
    /// (GitHub's `X-GitHub-Event: pull_request` with `"action": "opened"`).
    Header {
        name: &'a str,
        action: Option<&'static str>,
    },
    /// The first string found at one of these paths of a JSON body.
    Body(&'static [&'static [&'static str]]),
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
                event_header: None,
            },
        }
    }

    pub fn provider(&self) -> Provider {
        self.into()
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

    pub fn event_source(&self) -> EventSource<'_> {
        let header = |name| EventSource::Header { name, action: None };
        match self {
            Scheme::Github => EventSource::Header {
                name: "x-github-event",
                action: Some("action"),
            },
            Scheme::Gitlab => header("x-gitlab-event"),
            Scheme::Shopify => header("x-shopify-topic"),
            Scheme::Stripe | Scheme::StandardWebhooks => EventSource::Body(&[&["type"]]),
            // An Events API delivery names its event inside; handshakes only at the top.
            Scheme::Slack => EventSource::Body(&[&["event", "type"], &["type"]]),
            Scheme::Hmac {
                event_header: Some(h),
                ..
            } => header(h),
            // NetBox's event and model come from its typed payload.
            Scheme::Netbox | Scheme::Hmac { .. } => EventSource::None,
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
