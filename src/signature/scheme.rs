//! The signature schemes: which sender, which digest, which headers, and what they promise.

use std::str::FromStr;

use super::providers;
pub use super::providers::discord::EndpointKind;
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
    /// Gitea, Forgejo and Gogs.
    Gitea,
    Bitbucket,
    Pagerduty,
    Linear,
    Twitch,
    Zoom,
    Twilio {
        /// The webhook URL as configured in Twilio (scheme, host, port, path): what Twilio signs,
        /// which a receiver behind a proxy cannot see for itself.
        public_url: String,
    },
    Discord {
        /// Which of the application's URLs this is: it decides what a PING is and its answer.
        endpoint: EndpointKind,
        /// Discord documents no replay window; one applies only when the hook sets `tolerance_secs`.
        replay_window: bool,
    },
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
    /// The provider's own verifier finds it (several header families, the body, or the message
    /// kind), and [`crate::signature::Verified::event_type`] carries it.
    Verifier,
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
            Provider::Gitea => Scheme::Gitea,
            Provider::Bitbucket => Scheme::Bitbucket,
            Provider::Pagerduty => Scheme::Pagerduty,
            Provider::Linear => Scheme::Linear,
            Provider::Twitch => Scheme::Twitch,
            Provider::Zoom => Scheme::Zoom,
            Provider::Twilio => Scheme::Twilio {
                public_url: String::new(),
            },
            Provider::Discord => Scheme::Discord {
                endpoint: EndpointKind::Interactions,
                replay_window: false,
            },
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
            Scheme::StandardWebhooks
                | Scheme::Stripe
                | Scheme::Slack
                | Scheme::Linear
                | Scheme::Twitch
                | Scheme::Zoom
                | Scheme::Discord {
                    replay_window: true,
                    ..
                }
        )
    }

    /// Whether the sender signs a timestamp at all (Discord does, but documents no window, so one
    /// applies only when the hook asks for it): where `tolerance_secs` may be set.
    pub fn signs_timestamp(&self) -> bool {
        self.has_timestamp() || matches!(self, Scheme::Discord { .. })
    }

    /// The sender's own documented window, where it differs from the global default: Twitch
    /// documents 10 minutes, Linear's SDK allows one.
    pub fn default_tolerance_secs(&self) -> Option<u64> {
        match self {
            Scheme::Twitch => Some(providers::twitch::DEFAULT_TOLERANCE_SECS),
            Scheme::Linear => Some(providers::linear::DEFAULT_TOLERANCE_SECS),
            _ => None,
        }
    }

    /// Whether a hook of this scheme verifies with Ed25519 public keys (`public_keys`): Discord
    /// only with them, Standard Webhooks (`v1a`) beside its secrets.
    pub fn takes_public_keys(&self) -> bool {
        matches!(self, Scheme::Discord { .. } | Scheme::StandardWebhooks)
    }

    /// Whether the hook holds a symmetric secret to verify (and so `sign` with).
    pub fn takes_secrets(&self) -> bool {
        !matches!(self, Scheme::Discord { .. })
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
            Scheme::Gitea
            | Scheme::Bitbucket
            | Scheme::Pagerduty
            | Scheme::Linear
            | Scheme::Twitch
            | Scheme::Zoom
            | Scheme::Twilio { .. }
            | Scheme::Discord { .. } => EventSource::Verifier,
            // NetBox's event and model come from its typed payload.
            Scheme::Netbox | Scheme::Hmac { .. } => EventSource::None,
        }
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        match self {
            Scheme::Netbox => Algorithm::Sha512,
            Scheme::Hmac { algorithm, .. } => *algorithm,
            Scheme::Twilio { .. } => Algorithm::Sha1,
            _ => Algorithm::Sha256,
        }
    }
}
