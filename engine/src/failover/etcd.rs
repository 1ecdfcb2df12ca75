//! A small client of etcd's v3 JSON gateway (`POST /v3/...`, the API `etcdctl` speaks over
//! gRPC, as JSON): what a leader key bound to a lease needs, and nothing more. Keys and values
//! travel base64-encoded and 64-bit numbers as strings, as the gateway writes them. Each call
//! tries the members in turn, starting with the one that answered last, so one member down
//! costs one timeout at most.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// One key as etcd holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub value: Vec<u8>,
    /// The revision that created the key (0: none).
    pub create_revision: i64,
    /// The lease the key is bound to (0: none).
    pub lease: i64,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("no etcd member answered ({0})")]
    Unreachable(String),
    #[error("etcd answered {path} with something this client cannot read: {why}")]
    Answer { path: &'static str, why: String },
}

pub struct Etcd {
    agent: ureq::Agent,
    endpoints: Vec<String>,
    /// The member that answered last.
    preferred: usize,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn number(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64())
}

impl Etcd {
    /// A client of the members at `endpoints` (`http://host:port`); each request gives up
    /// after `timeout`.
    pub fn new(endpoints: &[String], timeout: Duration) -> Etcd {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Etcd { agent, endpoints: endpoints.to_vec(), preferred: 0 }
    }

    fn call(&mut self, path: &'static str, body: Value) -> Result<Value, EtcdError> {
        let body = body.to_string();
        let mut failures = Vec::new();
        for i in 0..self.endpoints.len() {
            let at = (self.preferred + i) % self.endpoints.len();
            let url = format!("{}{path}", self.endpoints[at]);
            let answer = self.agent.post(&url).send(body.as_str()).and_then(|mut r| {
                let status = r.status().as_u16();
                r.body_mut().read_to_string().map(|text| (status, text))
            });
            match answer {
                Ok((200, text)) => {
                    self.preferred = at;
                    return serde_json::from_str(&text)
                        .map_err(|e| EtcdError::Answer { path, why: format!("{e}: {text}") });
                }
                Ok((status, text)) => failures.push(format!("{url}: HTTP {status} {text}")),
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        Err(EtcdError::Unreachable(failures.join("; ")))
    }

    /// A new lease of `ttl_s` seconds; its id.
    pub fn grant(&mut self, ttl_s: u64) -> Result<i64, EtcdError> {
        let answer = self.call("/v3/lease/grant", json!({ "TTL": ttl_s }))?;
        number(&answer["ID"])
            .ok_or_else(|| EtcdError::Answer { path: "/v3/lease/grant", why: answer.to_string() })
    }

    /// Renews lease `id`; the seconds it now has left, 0 when it expired (or never existed).
    pub fn keepalive(&mut self, id: i64) -> Result<i64, EtcdError> {
        let answer = self.call("/v3/lease/keepalive", json!({ "ID": id.to_string() }))?;
        Ok(number(&answer["result"]["TTL"]).unwrap_or(0).max(0))
    }

    /// Ends lease `id` now, deleting the keys bound to it.
    pub fn revoke(&mut self, id: i64) -> Result<(), EtcdError> {
        self.call("/v3/lease/revoke", json!({ "ID": id.to_string() })).map(|_| ())
    }

    /// The key, if it exists.
    pub fn get(&mut self, key: &str) -> Result<Option<KeyValue>, EtcdError> {
        let answer = self.call("/v3/kv/range", json!({ "key": b64(key.as_bytes()) }))?;
        key_value(&answer["kvs"][0], "/v3/kv/range")
    }

    /// Creates `key` with `value`, bound to `lease`, only if it does not exist (one atomic
    /// transaction comparing its create revision with 0). `Err(existing)` when it exists.
    pub fn create(
        &mut self,
        key: &str,
        value: &[u8],
        lease: i64,
    ) -> Result<Result<(), Option<KeyValue>>, EtcdError> {
        let k = b64(key.as_bytes());
        let answer = self.call(
            "/v3/kv/txn",
            json!({
                "compare": [{ "key": k, "target": "CREATE", "createRevision": "0" }],
                "success": [{ "requestPut": { "key": k, "value": b64(value), "lease": lease.to_string() } }],
                "failure": [{ "requestRange": { "key": k } }],
            }),
        )?;
        if answer["succeeded"].as_bool() == Some(true) {
            return Ok(Ok(()));
        }
        let existing = &answer["responses"][0]["response_range"]["kvs"][0];
        Ok(Err(key_value(existing, "/v3/kv/txn")?))
    }

    /// Sets `key` (bound to no lease).
    pub fn put(&mut self, key: &str, value: &[u8]) -> Result<(), EtcdError> {
        self.call("/v3/kv/put", json!({ "key": b64(key.as_bytes()), "value": b64(value) })).map(|_| ())
    }

    /// Sets `key` (bound to no lease) only while `held` still holds exactly its value, bound to
    /// lease `held_lease` (one atomic transaction). `false` when it no longer does.
    pub fn put_while(
        &mut self,
        key: &str,
        value: &[u8],
        held: (&str, &[u8]),
        held_lease: i64,
    ) -> Result<bool, EtcdError> {
        let h = b64(held.0.as_bytes());
        let answer = self.call(
            "/v3/kv/txn",
            json!({
                "compare": [
                    { "key": h, "target": "VALUE", "result": "EQUAL", "value": b64(held.1) },
                    { "key": h, "target": "LEASE", "result": "EQUAL", "lease": held_lease.to_string() },
                ],
                "success": [{ "requestPut": { "key": b64(key.as_bytes()), "value": b64(value) } }],
            }),
        )?;
        Ok(answer["succeeded"].as_bool() == Some(true))
    }
}

fn key_value(kv: &Value, path: &'static str) -> Result<Option<KeyValue>, EtcdError> {
    if kv.is_null() {
        return Ok(None);
    }
    let bad = |why: &str| EtcdError::Answer { path, why: format!("{why}: {kv}") };
    let value = match kv["value"].as_str() {
        None => Vec::new(), // an empty value is left out
        Some(text) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| bad("a value that is not base64"))?,
    };
    Ok(Some(KeyValue {
        value,
        create_revision: number(&kv["create_revision"]).ok_or_else(|| bad("no create_revision"))?,
        lease: number(&kv["lease"]).unwrap_or(0),
    }))
}
