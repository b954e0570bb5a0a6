//! Which events a sink takes: `hooks = [paths]` and `events = [types]` with `*` wildcards
//! (`push`, `pull_request.*`, `dcim.device.*`). An event a sink does not take is passed over (its
//! checkpoint moves past it), never held.

use super::Event;

/// A sink's `hooks` and `events` settings; `None` takes every hook / every event type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub hooks: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
}

impl EventFilter {
    pub fn matches(&self, event: &Event) -> bool {
        self.takes(&event.hook, event.event_type.as_deref())
    }

    /// [`EventFilter::matches`] on the two fields it reads, for what only has those (the
    /// operator page's record of a delivery).
    pub fn takes(&self, hook: &str, event_type: Option<&str>) -> bool {
        let hook_ok = self
            .hooks
            .as_ref()
            .is_none_or(|hooks| hooks.iter().any(|h| h == hook));
        // An event without a type is the empty string: only `*` takes it.
        let ty = event_type.unwrap_or("");
        let type_ok = self
            .events
            .as_ref()
            .is_none_or(|pats| pats.iter().any(|p| wildcard_match(p, ty)));
        hook_ok && type_ok
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (dots included)
/// and everything else for itself. Linear time: on a mismatch it backtracks only to the last `*`.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // After the last `*` seen: the pattern position after it, and the text position it covers to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((after, covered)) = star {
            // Let the `*` swallow one more character and try again.
            pi = after;
            ti = covered + 1;
            star = Some((after, covered + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::testing::event;

    #[test]
    fn wildcards_match_as_documented() {
        for (p, t) in [
            ("push", "push"),
            ("pull_request.*", "pull_request.opened"),
            ("pull_request.*", "pull_request."),
            ("dcim.device.*", "dcim.device.created"),
            ("*", ""),
            ("*", "anything.at.all"),
            ("*.created", "dcim.site.created"),
            ("a*b*c", "aXbYbZc"),
            ("**", "x"),
        ] {
            assert!(wildcard_match(p, t), "{p} ~ {t}");
        }
        for (p, t) in [
            ("push", "pushed"),
            ("push", "pus"),
            ("pull_request.*", "pull_request"),
            ("pull_request.*", "issues.opened"),
            ("dcim.device.*", "dcim.site.created"),
            ("a*b*c", "aXbYbZ"),
            ("", "x"),
        ] {
            assert!(!wildcard_match(p, t), "{p} !~ {t}");
        }
    }

    #[test]
    fn hooks_and_events_both_have_to_match() {
        let push = event(2); // /github, push
        let opened = event(1); // /github, pull_request.opened
        let all = EventFilter::default();
        assert!(all.matches(&push) && all.matches(&opened));

        let prs = EventFilter {
            hooks: None,
            events: Some(vec!["pull_request.*".into()]),
        };
        assert!(prs.matches(&opened) && !prs.matches(&push));

        let other_hook = EventFilter {
            hooks: Some(vec!["/netbox".into()]),
            events: None,
        };
        assert!(!other_hook.matches(&push));

        let mut untyped = event(3);
        untyped.event_type = None;
        assert!(!prs.matches(&untyped));
        let star = EventFilter {
            hooks: Some(vec!["/github".into()]),
            events: Some(vec!["*".into()]),
        };
        assert!(star.matches(&untyped));
    }
}
