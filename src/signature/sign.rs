//! Signing as a sender would, for the `sign` command (operators test a setup with curl).

use base64::Engine;

use super::providers;
use super::scheme::{Encoding, Scheme};
use super::secret::{Key, KeyError, Secret};

/// The headers a sender of `scheme` would send for `body`, signed with `secret`: for the `sign`
/// command, so operators can test a setup with curl. `timestamp` and `id` are used where the scheme
/// signs them. Bodies are signed as they will be sent: a Twilio body as a form, Gitea's as JSON.
/// Schemes that verify with public keys (Discord) cannot sign.
pub fn sign(
    scheme: &Scheme,
    secret: &Secret,
    body: &[u8],
    timestamp: i64,
    id: &str,
) -> Result<Vec<(String, String)>, KeyError> {
    if !scheme.takes_secrets() {
        return Err(KeyError::PublicKeyOnly);
    }
    let key = Key::new(scheme, secret)?;
    let raw = key.bytes();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let ts = timestamp.to_string();
    let h = |n: &str, v: String| (n.to_string(), v);
    Ok(match scheme {
        Scheme::Netbox => vec![h("X-Hook-Signature", hex::encode(key.tag(&[body])))],
        Scheme::Github => vec![
            h(
                "X-Hub-Signature-256",
                format!("sha256={}", hex::encode(key.tag(&[body]))),
            ),
            h("X-GitHub-Delivery", id.to_string()),
        ],
        Scheme::Gitlab => vec![h(
            "X-Gitlab-Token",
            String::from_utf8_lossy(secret.expose()).into_owned(),
        )],
        Scheme::Shopify => vec![
            h("X-Shopify-Hmac-Sha256", b64(&key.tag(&[body]))),
            h("X-Shopify-Webhook-Id", id.to_string()),
        ],
        Scheme::Hmac {
            header,
            encoding,
            prefix,
            delivery_id_header,
            ..
        } => {
            let tag = key.tag(&[body]);
            let enc = match encoding {
                Encoding::Hex => hex::encode(tag),
                Encoding::Base64 => b64(&tag),
            };
            let mut v = vec![h(header, format!("{prefix}{enc}"))];
            if let Some(d) = delivery_id_header {
                v.push(h(d, id.to_string()));
            }
            v
        }
        Scheme::StandardWebhooks => vec![
            h("webhook-id", id.to_string()),
            h("webhook-timestamp", ts.clone()),
            h(
                "webhook-signature",
                format!(
                    "v1,{}",
                    b64(&key.tag(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]))
                ),
            ),
        ],
        Scheme::Stripe => vec![h(
            "Stripe-Signature",
            format!(
                "t={ts},v1={}",
                hex::encode(key.tag(&[ts.as_bytes(), b".", body]))
            ),
        )],
        Scheme::Gitea => providers::gitea::sign(raw, body, id, "push"),
        Scheme::Bitbucket => providers::bitbucket::sign(raw, body, id, "repo:push"),
        Scheme::Pagerduty => providers::pagerduty::sign(&[raw], body),
        Scheme::Linear => providers::linear::sign(raw, body, id, "Issue"),
        Scheme::Twitch => providers::twitch::sign(raw, body, id, timestamp, "channel.follow"),
        Scheme::Zoom => providers::zoom::sign(raw, body, timestamp),
        Scheme::Twilio { public_url } => {
            if public_url.is_empty() {
                return Err(KeyError::NoPublicUrl);
            }
            // A form body's parameters are signed; a URL that carries `bodySHA256` (a JSON
            // body, see `providers::twilio::with_body_sha256`) is signed alone.
            providers::twilio::sign(raw, public_url, body)
                .map_err(|r| KeyError::Unsignable(r.to_string()))?
        }
        Scheme::Discord { .. } => return Err(KeyError::PublicKeyOnly),
        Scheme::Slack => vec![
            h("X-Slack-Request-Timestamp", ts.clone()),
            h(
                "X-Slack-Signature",
                format!(
                    "v0={}",
                    hex::encode(key.tag(&[b"v0:", ts.as_bytes(), b":", body]))
                ),
            ),
        ],
    })
}
