//! MEASUREMENT ONLY: the NetBox fields read with jiter's pull parser; `None` means "ask serde".

use std::borrow::Cow;

use jiter::{Jiter, Peek};
use serde_json::value::RawValue;

use super::{
    decoded_string, is_scalar_id, parse_timestamp, AnyObject, NetboxEvent, NetboxTimestamp,
    ObjectRef, RequestInfo, Snapshots,
};

/// The body's own text when jiter handed back a slice of it, else a copy.
fn cow<'t>(text: &'t str, s: &str) -> Cow<'t, str> {
    let start = (s.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    match text.get(start..start.wrapping_add(s.len())) {
        Some(t) if t.as_ptr() == s.as_ptr() => Cow::Borrowed(t),
        _ => Cow::Owned(s.to_owned()),
    }
}

struct P<'t> {
    text: &'t str,
    j: Jiter<'t>,
}

impl<'t> P<'t> {
    fn string(&mut self) -> Option<Cow<'t, str>> {
        let s = self.j.next_str().ok()?;
        Some(cow(self.text, s))
    }
    fn opt_string(&mut self) -> Option<Option<Cow<'t, str>>> {
        match self.j.peek().ok()? {
            Peek::Null => {
                self.j.known_null().ok()?;
                Some(None)
            }
            Peek::String => {
                let s = self.j.known_str().ok()?;
                Some(Some(cow(self.text, s)))
            }
            _ => None,
        }
    }
    fn opt_uuid(&mut self) -> Option<Option<uuid::Uuid>> {
        match self.opt_string()? {
            None => Some(None),
            Some(s) => s.parse().ok().map(Some),
        }
    }
    fn span(&mut self) -> Option<&'t str> {
        let peek = self.j.peek().ok()?;
        let start = self.j.current_index();
        self.j.known_skip(peek).ok()?;
        std::str::from_utf8(self.j.slice_to_current(start)).ok()
    }
    fn is_null(&mut self) -> Option<bool> {
        if self.j.peek().ok()? == Peek::Null {
            self.j.known_null().ok()?;
            return Some(true);
        }
        Some(false)
    }
    fn object_start(&mut self) -> Option<Option<u8>> {
        if self.j.peek().ok()? != Peek::Object {
            return None;
        }
        Some(self.j.known_object().ok()?.map(key_code))
    }
    fn next_key(&mut self) -> Option<Option<u8>> {
        Some(self.j.next_key().ok()?.map(key_code))
    }
}

fn key_code(k: &str) -> u8 {
    match k {
        "event" => 0,
        "timestamp" => 1,
        "model" => 2,
        "object_type" => 3,
        "username" => 4,
        "request_id" => 5,
        "request" => 6,
        "data" => 7,
        "snapshots" => 8,
        "context" => 9,
        "id" => 10,
        "url" => 11,
        "method" => 12,
        "path" => 13,
        "user" => 14,
        "prechange" => 15,
        "postchange" => 16,
        _ => 255,
    }
}

pub fn netbox(text: &str) -> Option<NetboxEvent<'_>> {
    let mut p = P {
        text,
        j: Jiter::new(text.as_bytes()),
    };
    let mut ev = NetboxEvent {
        event: Cow::Borrowed(""),
        timestamp: NetboxTimestamp(parse_timestamp("1970-01-01T00:00:00+00:00").ok()?),
        model: None,
        object_type: None,
        username: None,
        request_id: None,
        request: None,
        data: None,
        snapshots: None,
        context: None,
    };
    let mut seen = 0u32;
    let mut key = p.object_start()?;
    while let Some(k) = key {
        if k < 32 {
            if seen & 1 << k != 0 {
                return None;
            }
            seen |= 1 << k;
        }
        match k {
            0 => ev.event = p.string()?,
            1 => {
                let s = p.string()?;
                ev.timestamp = NetboxTimestamp(parse_timestamp(&s).ok()?);
            }
            2 => ev.model = p.opt_string()?,
            3 => ev.object_type = p.opt_string()?,
            4 => ev.username = p.opt_string()?,
            5 => ev.request_id = p.opt_uuid()?,
            6 => {
                if !p.is_null()? {
                    let mut r = RequestInfo {
                        id: None,
                        method: None,
                        path: None,
                        user: None,
                    };
                    let mut k = p.object_start()?;
                    while let Some(key) = k {
                        match key {
                            10 => r.id = p.opt_uuid()?,
                            12 => r.method = p.opt_string()?,
                            13 => r.path = p.opt_string()?,
                            14 => r.user = p.opt_string()?,
                            _ => p.j.next_skip().ok()?,
                        }
                        k = p.next_key()?;
                    }
                    ev.request = Some(r);
                }
            }
            7 => {
                if !p.is_null()? {
                    let mut obj = ObjectRef::default();
                    let mut k = p.object_start()?;
                    while let Some(key) = k {
                        match key {
                            10 if obj.id.is_none() => {
                                let raw = p.span()?;
                                if is_scalar_id(raw) {
                                    obj.id = Some(serde_json::from_str::<&RawValue>(raw).ok()?);
                                }
                            }
                            11 if obj.url.is_none() => obj.url = decoded_string(p.span()?),
                            _ => p.j.next_skip().ok()?,
                        }
                        k = p.next_key()?;
                    }
                    ev.data = Some(obj);
                }
            }
            8 => {
                if !p.is_null()? {
                    let mut s = Snapshots {
                        prechange: None,
                        postchange: None,
                    };
                    let mut k = p.object_start()?;
                    while let Some(key) = k {
                        match key {
                            15 | 16 => {
                                let v = match p.j.peek().ok()? {
                                    Peek::Null => {
                                        p.j.known_null().ok()?;
                                        None
                                    }
                                    Peek::Object => {
                                        p.j.known_skip(Peek::Object).ok()?;
                                        Some(AnyObject)
                                    }
                                    _ => return None,
                                };
                                if key == 15 {
                                    s.prechange = v;
                                } else {
                                    s.postchange = v;
                                }
                            }
                            _ => p.j.next_skip().ok()?,
                        }
                        k = p.next_key()?;
                    }
                    ev.snapshots = Some(s);
                }
            }
            9 => ev.context = serde_json::from_str::<Option<&RawValue>>(p.span()?).ok()?,
            _ => p.j.next_skip().ok()?,
        }
        key = p.next_key()?;
    }
    if seen & 0b11 != 0b11 {
        return None;
    }
    p.j.finish().ok()?;
    Some(ev)
}
