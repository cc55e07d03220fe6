//! Management API subset (`/rest/v1`, HTTP Basic) — ddi-api.md §2.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use super::Shared;
use super::artifacts::{self, Hasher, MAX_ARTIFACT_SIZE};
use super::cron::MaintenanceWindow;
use super::fiql::Expr;
use super::http::{
    Warnings, base_url, basic_challenge, check_json_ct, json_get, json_resp, parse_body,
};
use super::model::{
    Action, ActionType, AssignOptions, Assigned, CONFIG_KEYS, Conditions, DistributionSet, DsType,
    Failure, Metadata, Res, Rollout, SmType, SoftwareModule, State, Target, TargetUpdate, clip,
    parse_polling,
};
use super::time::now_ms;

type Sh = AxState<Arc<Shared>>;
type Q = Query<HashMap<String, String>>;

/// Mgmt routes (with Basic auth).
pub fn routes(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/rest/v1/softwaremodules", get(sm_list).post(sm_create))
        .route(
            "/rest/v1/softwaremodules/{id}",
            get(sm_get).delete(sm_delete),
        )
        .route(
            "/rest/v1/softwaremodules/{id}/artifacts",
            get(artifact_list)
                .post(artifact_upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/rest/v1/softwaremodules/{id}/artifacts/{aid}",
            get(artifact_get),
        )
        .route(
            "/rest/v1/softwaremodules/{id}/artifacts/{aid}/download",
            get(artifact_download),
        )
        .route(
            "/rest/v1/softwaremodules/{id}/metadata",
            get(sm_metadata_list).post(sm_metadata_create),
        )
        .route(
            "/rest/v1/softwaremoduletypes",
            get(type_list::<SmType>).post(sm_type_create),
        )
        .route("/rest/v1/softwaremoduletypes/{id}", get(type_get::<SmType>))
        .route(
            "/rest/v1/distributionsettypes",
            get(type_list::<DsType>).post(ds_type_create),
        )
        .route(
            "/rest/v1/distributionsettypes/{id}",
            get(type_get::<DsType>),
        )
        .route("/rest/v1/distributionsets", get(ds_list).post(ds_create))
        .route("/rest/v1/distributionsets/{id}", get(ds_get))
        .route(
            "/rest/v1/distributionsets/{id}/assignedTargets",
            post(ds_assign_targets),
        )
        .route("/rest/v1/targets", get(target_list).post(target_create))
        .route(
            "/rest/v1/targets/{cid}",
            get(target_get).put(target_update).delete(target_delete),
        )
        .route("/rest/v1/targets/{cid}/attributes", get(target_attributes))
        .route(
            "/rest/v1/targets/{cid}/assignedDS",
            get(target_assigned_ds).post(target_assign),
        )
        .route(
            "/rest/v1/targets/{cid}/installedDS",
            get(target_installed_ds),
        )
        .route("/rest/v1/targets/{cid}/actions", get(target_actions))
        .route(
            "/rest/v1/targets/{cid}/actions/{aid}",
            get(target_action).delete(target_action_cancel),
        )
        .route(
            "/rest/v1/targets/{cid}/actions/{aid}/status",
            get(target_action_status),
        )
        .route("/rest/v1/actions", get(actions_list))
        .route("/rest/v1/system/configs", get(configs_list))
        .route(
            "/rest/v1/system/configs/{key}",
            get(config_get).put(config_put).delete(config_delete),
        )
        .route("/rest/v1/rollouts", get(rollout_list).post(rollout_create))
        .route("/rest/v1/rollouts/{id}", get(rollout_get))
        .route("/rest/v1/rollouts/{id}/{op}", post(rollout_op))
        .route("/rest/v1/rollouts/{id}/deploygroups", get(group_list))
        .route("/rest/v1/rollouts/{id}/deploygroups/{gid}", get(group_get))
        .route(
            "/rest/v1/rollouts/{id}/deploygroups/{gid}/targets",
            get(group_targets),
        )
        .route_layer(axum::middleware::from_fn_with_state(shared, basic_auth))
}

async fn basic_auth(AxState(sh): Sh, req: Request, next: Next) -> Response {
    if sh.mgmt_credentials_ok(req.headers()) {
        next.run(req).await
    } else {
        basic_challenge("Mgmt API needs HTTP Basic auth (default admin:admin)")
    }
}

fn base(headers: &HeaderMap, sh: &Shared) -> String {
    format!("{}/rest/v1", base_url(headers, &sh.host()))
}

fn id_of(s: &str, what: &str) -> Res<u64> {
    s.parse()
        .map_err(|_| Failure::bad(format!("{what} id '{}' is not a number", clip(s))))
}

fn done(r: Res<Response>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

// ------------------------------------------------------------------ field helpers

fn obj<'a>(v: &'a Value, what: &str) -> Res<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Failure::bad(format!("each {what} must be a JSON object")))
}

fn req_str<'a>(o: &'a Map<String, Value>, k: &str, what: &str) -> Res<&'a str> {
    match o.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(Failure::bad(format!("{what}: '{k}' is required")))
        }
        Some(_) => Err(Failure::bad(format!("{what}: '{k}' must be a string"))),
    }
}

fn opt_str<'a>(o: &'a Map<String, Value>, k: &str, what: &str) -> Res<Option<&'a str>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Failure::bad(format!("{what}: '{k}' must be a string"))),
    }
}

fn opt_bool(o: &Map<String, Value>, k: &str, what: &str) -> Res<Option<bool>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Failure::bad(format!("{what}: '{k}' must be true or false"))),
    }
}

fn opt_i64(o: &Map<String, Value>, k: &str, what: &str) -> Res<Option<i64>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| Failure::bad(format!("{what}: '{k}' must be an integer"))),
    }
}

fn expect_array(v: Value, example: &str) -> Res<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(Failure::new(
            400,
            "hawkbit.server.error.rest.body.notReadable",
            format!("this endpoint takes a JSON array (bulk create), e.g. {example}"),
        )),
    }
}

fn page(items: Vec<Value>, q: &HashMap<String, String>) -> Res<Value> {
    let num = |k: &str, d: usize| -> Res<usize> {
        q.get(k).map_or(Ok(d), |v| {
            v.parse()
                .map_err(|_| Failure::bad(format!("'{k}' must be a non-negative integer")))
        })
    };
    let offset = num("offset", 0)?;
    let limit = num("limit", 50)?.min(500);
    let total = items.len();
    let content: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    Ok(json!({ "content": content, "total": total, "size": content.len() }))
}

fn audit(created: i64, modified: i64) -> Value {
    json!({ "createdBy": "admin", "createdAt": created, "lastModifiedBy": "admin", "lastModifiedAt": modified })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// `POST` of a JSON array of new entities: checks the Content-Type, parses the array (`example`
/// in the error), and under one state lock runs `create` on each item (an object, `what` in
/// the error if not) until the first failure. On success 201 with `render` of each created
/// entity, plus the `Warning` headers `create` collected.
fn create_each<K>(
    sh: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    example: &str,
    what: &str,
    mut create: impl FnMut(&mut State, &Map<String, Value>, &mut Warnings, i64) -> Res<K>,
    render: impl Fn(&State, &str, &K) -> Option<Value>,
) -> Response {
    done((|| {
        check_json_ct(headers)?;
        let items = expect_array(parse_body(body)?, example)?;
        let mut w = Warnings::default();
        let now = now_ms();
        let mut st = sh.state();
        let mut created = Vec::new();
        for it in &items {
            created.push(create(&mut st, obj(it, what)?, &mut w, now)?);
        }
        let b = base(headers, sh);
        let out: Vec<Value> = created.iter().filter_map(|k| render(&st, &b, k)).collect();
        Ok(w.apply(json_resp(StatusCode::CREATED, &Value::Array(out))))
    })())
}

// ------------------------------------------------------------------ software modules

fn type_name(k: &str) -> &str {
    match k {
        "os" => "OS",
        "application" => "Application",
        _ => k,
    }
}

fn sm_json(b: &str, m: &SoftwareModule) -> Value {
    merge(
        json!({
            "id": m.id, "name": m.name, "version": m.version, "type": m.kind, "typeName": type_name(&m.kind),
            "description": m.description, "vendor": m.vendor, "encrypted": m.encrypted,
            "locked": m.locked, "deleted": false, "complete": true,
            "_links": {
                "self": { "href": format!("{b}/softwaremodules/{}", m.id) },
                "artifacts": { "href": format!("{b}/softwaremodules/{}/artifacts", m.id) },
                "type": { "href": format!("{b}/softwaremoduletypes/{}", m.kind) },
                "metadata": { "href": format!("{b}/softwaremodules/{}/metadata?offset=0&limit=50", m.id) },
            }
        }),
        audit(m.created_at, m.created_at),
    )
}

async fn sm_create(AxState(sh): Sh, headers: HeaderMap, body: Bytes) -> Response {
    create_each(
        &sh,
        &headers,
        &body,
        r#"[{"name":"rootfs","version":"1.2.0","type":"os"}]"#,
        "software module",
        |st, o, w, now| {
            w.unknown_fields(
                "softwaremodule",
                o,
                &[
                    "name",
                    "version",
                    "type",
                    "description",
                    "vendor",
                    "encrypted",
                ],
                &[("moduleType", "type"), ("kind", "type")],
            );
            let id = st.create_module(
                req_str(o, "name", "softwaremodule")?,
                req_str(o, "version", "softwaremodule")?,
                req_str(o, "type", "softwaremodule")?,
                opt_str(o, "description", "softwaremodule")?.unwrap_or(""),
                opt_str(o, "vendor", "softwaremodule")?.unwrap_or(""),
                opt_bool(o, "encrypted", "softwaremodule")?.unwrap_or(false),
                now,
            )?;
            Ok(id)
        },
        |st, b, i| st.modules.get(i).map(|m| sm_json(b, m)),
    )
}

/// The `q=` FIQL filter of a software module or distribution set list (hawkBit's
/// `SoftwareModuleFields`/`DistributionSetFields` subset: id, name, version, type (key),
/// description); None without one.
fn entity_filter(q: &HashMap<String, String>, what: &str) -> Res<Option<Expr>> {
    match q.get("q") {
        Some(s) if !s.is_empty() => {
            Expr::parse_over(s, what, &["id", "name", "version", "type", "description"])
                .map(Some)
                .map_err(Failure::bad)
        }
        _ => Ok(None),
    }
}

/// Whether an entity with these fields matches the filter (no filter: all match).
fn entity_matches(
    expr: Option<&Expr>,
    id: u64,
    name: &str,
    version: &str,
    kind: &str,
    description: &str,
) -> bool {
    expr.is_none_or(|e| {
        e.matches(&|f| {
            Some(match f {
                "id" => id.to_string(),
                "name" => name.to_owned(),
                "version" => version.to_owned(),
                "type" => kind.to_owned(),
                "description" => description.to_owned(),
                _ => return None,
            })
        })
    })
}

async fn sm_list(AxState(sh): Sh, Query(q): Q, headers: HeaderMap) -> Response {
    done((|| {
        let expr = entity_filter(&q, "software modules")?;
        let st = sh.state();
        let b = base(&headers, &sh);
        let items = st
            .modules
            .values()
            .filter(|m| {
                entity_matches(
                    expr.as_ref(),
                    m.id,
                    &m.name,
                    &m.version,
                    &m.kind,
                    &m.description,
                )
            })
            .map(|m| sm_json(&b, m))
            .collect();
        Ok(json_get(&headers, &page(items, &q)?))
    })())
}

fn module<'a>(st: &'a State, id: &str) -> Res<&'a SoftwareModule> {
    st.module(id_of(id, "software module")?)
}

async fn sm_get(AxState(sh): Sh, Path(id): Path<String>, headers: HeaderMap) -> Response {
    done((|| {
        let st = sh.state();
        Ok(json_get(
            &headers,
            &sm_json(&base(&headers, &sh), module(&st, &id)?),
        ))
    })())
}

async fn sm_delete(AxState(sh): Sh, Path(id): Path<String>, _body: Bytes) -> Response {
    done((|| {
        let files = sh.state().delete_module(id_of(&id, "software module")?)?;
        for f in files {
            let _ = std::fs::remove_file(f);
        }
        Ok(StatusCode::OK.into_response())
    })())
}

async fn sm_metadata_create(
    AxState(sh): Sh,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    done((|| {
        check_json_ct(&headers)?;
        let items = expect_array(
            parse_body(&body)?,
            r#"[{"key":"min-bootloader","value":"2024.01","targetVisible":true}]"#,
        )?;
        let mut st = sh.state();
        let m = module(&st, &id)?.id;
        let mut out = Vec::new();
        let mut new = Vec::new();
        for it in &items {
            let o = obj(it, "metadata")?;
            let md = Metadata {
                key: req_str(o, "key", "metadata")?.into(),
                value: opt_str(o, "value", "metadata")?.unwrap_or("").into(),
                target_visible: opt_bool(o, "targetVisible", "metadata")?.unwrap_or(false),
            };
            out.push(json!({"key": md.key, "value": md.value, "targetVisible": md.target_visible}));
            new.push(md);
        }
        st.add_module_metadata(m, new)?;
        Ok(json_resp(StatusCode::CREATED, &Value::Array(out)))
    })())
}

async fn sm_metadata_list(
    AxState(sh): Sh,
    Path(id): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        let m = module(&st, &id)?;
        let items = m
            .metadata
            .iter()
            .map(|x| json!({"key": x.key, "value": x.value, "targetVisible": x.target_visible}))
            .collect();
        Ok(json_get(&headers, &page(items, &q)?))
    })())
}

fn artifact_mgmt_json(b: &str, sm: u64, a: &super::model::Artifact) -> Value {
    merge(
        json!({
            "id": a.id, "providedFilename": a.filename, "size": a.size,
            "hashes": { "sha1": a.sha1, "md5": a.md5, "sha256": a.sha256 },
            "_links": {
                "self": { "href": format!("{b}/softwaremodules/{sm}/artifacts/{}", a.id) },
                "download": { "href": format!("{b}/softwaremodules/{sm}/artifacts/{}/download", a.id) },
            }
        }),
        audit(a.created_at, a.created_at),
    )
}

async fn artifact_list(AxState(sh): Sh, Path(id): Path<String>, headers: HeaderMap) -> Response {
    done((|| {
        let st = sh.state();
        let m = module(&st, &id)?;
        let b = base(&headers, &sh);
        Ok(json_get(
            &headers,
            &Value::Array(
                m.artifacts
                    .iter()
                    .map(|a| artifact_mgmt_json(&b, m.id, a))
                    .collect(),
            ),
        ))
    })())
}

fn artifact_of<'a>(st: &'a State, id: &str, aid: &str) -> Res<(u64, &'a super::model::Artifact)> {
    let m = module(st, id)?;
    let aid = id_of(aid, "artifact")?;
    let a = m
        .artifacts
        .iter()
        .find(|a| a.id == aid)
        .ok_or_else(|| Failure::not_found(format!("artifact {aid} not found")))?;
    Ok((m.id, a))
}

async fn artifact_get(
    AxState(sh): Sh,
    Path((id, aid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        let (sm, a) = artifact_of(&st, &id, &aid)?;
        Ok(json_get(
            &headers,
            &artifact_mgmt_json(&base(&headers, &sh), sm, a),
        ))
    })())
}

async fn artifact_download(
    AxState(sh): Sh,
    Path((id, aid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let a = {
            let st = sh.state();
            artifact_of(&st, &id, &aid)?.1.clone()
        };
        Ok(artifacts::serve(
            &a,
            &headers,
            false,
            artifacts::StreamFaults::default(),
        ))
    })())
}

async fn artifact_upload(
    AxState(sh): Sh,
    Path(id): Path<String>,
    Query(q): Q,
    req: Request,
) -> Response {
    let smid = match id_of(&id, "software module") {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let headers = req.headers().clone();
    let tripped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let req = guard_part_headers(req, tripped.clone());
    let mp = <Multipart as axum::extract::FromRequest<()>>::from_request(req, &()).await;
    // the module is checked after the body was consumed (answering early breaks the client's pipe)
    let mut mp = match mp {
        Ok(m) => m,
        Err(e) => {
            return Failure::bad(format!(
                "artifact upload must be multipart/form-data with a part named 'file': {e}"
            ))
            .into_response();
        }
    };
    let tmp = artifacts::temp_path(&sh.storage);
    let mut r = upload_inner(&sh, smid, &q, &headers, &mut mp, &tmp).await;
    if r.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    if tripped.load(std::sync::atomic::Ordering::SeqCst) {
        r = Err(Failure::bad(format!(
            "multipart part headers (or the preamble) longer than {MAX_PART_HEADER} bytes"
        )));
    }
    done(r)
}

/// Longest multipart part-header block (and preamble before the first boundary), in bytes:
/// Apache Commons FileUpload's `MultipartStream.HEADER_PART_SIZE_MAX` (10240), which Tomcat — and
/// so hawkBit — uses for multipart requests. The multipart parser buffers a header block whole
/// until its blank line: an 8 MiB file name took the simulator to hundreds of MB.
pub const MAX_PART_HEADER: usize = 10_240;

/// Wraps the request body of a `multipart/form-data` request so that a part-header block or a
/// preamble longer than [`MAX_PART_HEADER`] ends the body with an error (after reading the rest up
/// to 1 GiB, dropped, so the client still gets the answer); `tripped` is set when that happens.
fn guard_part_headers(req: Request, tripped: Arc<std::sync::atomic::AtomicBool>) -> Request {
    use futures_util::StreamExt as _;
    let boundary = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| {
            ct.split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix("boundary="))
                .map(|b| b.trim_matches('"').to_owned())
        });
    let Some(boundary) = boundary.filter(|b| !b.is_empty()) else {
        return req; // not multipart: the extractor refuses it
    };
    let (parts, body) = req.into_parts();
    let state = (body.into_data_stream(), PartScan::new(&boundary), false);
    let stream = futures_util::stream::unfold(state, move |(mut inner, mut scan, done)| {
        let tripped = tripped.clone();
        async move {
            if done {
                return None;
            }
            match inner.next().await? {
                Err(e) => Some((Err(std::io::Error::other(e)), (inner, scan, true))),
                Ok(chunk) if scan.feed(&chunk) => Some((Ok(chunk), (inner, scan, false))),
                Ok(_) => {
                    tripped.store(true, std::sync::atomic::Ordering::SeqCst);
                    let mut dropped = 0u64;
                    while let Some(Ok(c)) = inner.next().await {
                        dropped += c.len() as u64;
                        if dropped > MAX_ARTIFACT_SIZE {
                            break;
                        }
                    }
                    let e = std::io::Error::other("multipart part headers too long");
                    Some((Err(e), (inner, scan, true)))
                }
            }
        }
    });
    Request::from_parts(parts, axum::body::Body::from_stream(stream))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    Preamble,
    Data,
    AfterDelimiter,
    Dash,
    Header,
    Epilogue,
}

/// Follows a multipart body's structure to measure each part-header block: after every
/// `CRLF--boundary` the bytes up to the blank line (`CRLFCRLF`). A boundary cannot contain CR, so a
/// mismatch restarts the delimiter match at a CR or at the start.
#[derive(Debug)]
struct PartScan {
    delimiter: Vec<u8>,
    matched: usize,
    state: Scan,
    count: usize,
    blank: usize,
}

impl PartScan {
    fn new(boundary: &str) -> Self {
        Self {
            delimiter: [b"\r\n--", boundary.as_bytes()].concat(),
            // the body starts as if after a CRLF: "--boundary" at once is the first delimiter
            matched: 2,
            state: Scan::Preamble,
            count: 0,
            blank: 0,
        }
    }

    /// Feeds body bytes; false once a header block or the preamble is over [`MAX_PART_HEADER`].
    fn feed(&mut self, data: &[u8]) -> bool {
        const BLANK: &[u8] = b"\r\n\r\n";
        let mut i = 0;
        while i < data.len() {
            match self.state {
                Scan::Preamble | Scan::Data => {
                    let preamble = self.state == Scan::Preamble;
                    if self.matched == 0 {
                        // skip to the next CR: only there can a delimiter start
                        let skip = data[i..]
                            .iter()
                            .position(|&c| c == b'\r')
                            .unwrap_or(data.len() - i);
                        i += skip;
                        if preamble {
                            self.count += skip;
                        }
                        if i == data.len() {
                            break;
                        }
                    }
                    let c = data[i];
                    i += 1;
                    if preamble {
                        self.count += 1;
                    }
                    if c == self.delimiter[self.matched] {
                        self.matched += 1;
                        if self.matched == self.delimiter.len() {
                            self.matched = 0;
                            self.state = Scan::AfterDelimiter;
                        }
                    } else {
                        self.matched = usize::from(c == b'\r');
                    }
                    if preamble && self.count > MAX_PART_HEADER + self.delimiter.len() {
                        return false;
                    }
                }
                Scan::AfterDelimiter | Scan::Dash => {
                    if data[i] == b'-' {
                        i += 1;
                        self.state = if self.state == Scan::Dash {
                            Scan::Epilogue
                        } else {
                            Scan::Dash
                        };
                    } else {
                        self.count = usize::from(self.state == Scan::Dash);
                        self.blank = 0;
                        self.state = Scan::Header;
                    }
                }
                Scan::Header => {
                    let c = data[i];
                    i += 1;
                    self.count += 1;
                    if c == BLANK[self.blank] {
                        self.blank += 1;
                        if self.blank == BLANK.len() {
                            self.state = Scan::Data;
                        }
                    } else {
                        self.blank = usize::from(c == b'\r');
                    }
                    if self.count > MAX_PART_HEADER {
                        return false;
                    }
                }
                Scan::Epilogue => break,
            }
        }
        true
    }
}

/// Form fields the upload reads besides `file` (hawkBit's `@RequestParam`s); others are ignored.
const UPLOAD_FIELDS: &[&str] = &["filename", "md5sum", "sha1sum", "sha256sum"];

/// Longest upload form field (bytes): digests are 32–64 hex characters and file names at most
/// 256 characters; a longer field is refused with 400 and never kept whole (issue 13 §11: a
/// 200 MB `sha256sum` field was buffered and grew the server to 592 MB).
pub const MAX_UPLOAD_FIELD: usize = 4096;

/// Reads a known form field: at most [`MAX_UPLOAD_FIELD`] bytes of UTF-8. A longer one is read to
/// its end (dropped, so the client still gets the answer) and refused.
async fn upload_field(field: &mut axum::extract::multipart::Field<'_>, name: &str) -> Res<String> {
    let mut v = Vec::new();
    let mut size = 0usize;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| Failure::bad(format!("malformed multipart field '{}': {e}", clip(name))))?
    {
        size = size.saturating_add(chunk.len());
        if size <= MAX_UPLOAD_FIELD {
            v.extend_from_slice(&chunk);
        }
    }
    if size > MAX_UPLOAD_FIELD {
        return Err(Failure::bad(format!(
            "multipart field '{name}' has {size} bytes; at most {MAX_UPLOAD_FIELD} are accepted"
        )));
    }
    String::from_utf8(v).map_err(|_| Failure::bad(format!("multipart field '{name}' is not UTF-8")))
}

async fn upload_inner(
    sh: &Arc<Shared>,
    smid: u64,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    mp: &mut Multipart,
    tmp: &std::path::Path,
) -> Res<Response> {
    let io = |e: std::io::Error| {
        Failure::new(
            500,
            "hawkbit.server.error.artifact.uploadFailed",
            format!("storing upload: {e}"),
        )
    };
    let mut params: HashMap<String, String> = q
        .iter()
        .filter(|(k, _)| UPLOAD_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut file: Option<(String, super::artifacts::Hashes)> = None;
    // the first refused field is answered once the body was read (answering early breaks the
    // client's pipe); fields after it are read and dropped
    let mut refused: Option<Failure> = None;
    loop {
        let field = mp
            .next_field()
            .await
            .map_err(|e| Failure::bad(format!("malformed multipart body: {e}")))?;
        let Some(mut field) = field else { break };
        let name = field.name().unwrap_or("").to_string();
        if name == "file" && refused.is_none() {
            let fname = field.file_name().unwrap_or("").to_string();
            let mut out = tokio::fs::File::create(tmp).await.map_err(io)?;
            let mut h = Hasher::default();
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| Failure::bad(format!("malformed multipart body: {e}")))?
            {
                h.update(&chunk);
                if h.size > MAX_ARTIFACT_SIZE {
                    return Err(Failure::new(
                        413,
                        "hawkbit.server.error.quota.artifactSize",
                        "artifact larger than maxArtifactSize (1 GiB)",
                    ));
                }
                out.write_all(&chunk).await.map_err(io)?;
            }
            out.flush().await.map_err(io)?;
            file = Some((fname, h.finish()));
        } else if UPLOAD_FIELDS.contains(&name.as_str()) && refused.is_none() {
            match upload_field(&mut field, &name).await {
                Ok(v) => {
                    params.insert(name, v);
                }
                Err(e) => refused = Some(e),
            }
        } else {
            // unknown (or after a refusal): read and dropped, never kept
            let mut dropped = 0u64;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| Failure::bad(format!("malformed multipart body: {e}")))?
            {
                dropped += chunk.len() as u64;
                if dropped > MAX_ARTIFACT_SIZE {
                    return Err(refused.unwrap_or_else(|| {
                        Failure::bad(format!(
                            "multipart field '{}' is larger than 1 GiB",
                            clip(&name)
                        ))
                    }));
                }
            }
        }
    }
    if let Some(e) = refused {
        return Err(e);
    }
    let (fname, h) = file.ok_or_else(|| {
        Failure::bad("multipart body has no part named 'file' (curl -F file=@bundle.raucb)")
    })?;
    let filename = params
        .get("filename")
        .cloned()
        .filter(|s| !s.is_empty())
        .unwrap_or(fname);
    if filename.is_empty() {
        return Err(Failure::bad(
            "no file name: give the 'file' part a filename or pass filename=…",
        ));
    }
    for (k, got) in [
        ("md5sum", &h.md5),
        ("sha1sum", &h.sha1),
        ("sha256sum", &h.sha256),
    ] {
        if let Some(want) = params.get(k)
            && !want.eq_ignore_ascii_case(got)
        {
            return Err(Failure::new(
                400,
                "hawkbit.server.error.artifact.hashMismatch",
                format!("{k} mismatch: provided {}, computed {got}", clip(want)),
            ));
        }
    }
    let now = now_ms();
    let mut st = sh.state();
    st.check_upload_allowed(smid)?;
    let a = artifacts::register(&mut st, &sh.storage, smid, &filename, tmp, h, now)?;
    Ok(json_resp(
        StatusCode::CREATED,
        &artifact_mgmt_json(&base(headers, sh), smid, &a),
    ))
}

// ------------------------------------------------------------------ module and set types

fn sm_type_json(b: &str, t: &SmType) -> Value {
    merge(
        json!({
            "id": t.id, "key": t.key, "name": t.name, "description": t.description,
            "maxAssignments": t.max_assignments, "deleted": false,
            "_links": { "self": { "href": format!("{b}/softwaremoduletypes/{}", t.id) } }
        }),
        audit(t.created_at, t.created_at),
    )
}

fn ds_type_json(b: &str, t: &DsType) -> Value {
    merge(
        json!({
            "id": t.id, "key": t.key, "name": t.name, "description": t.description, "deleted": false,
            "_links": {
                "self": { "href": format!("{b}/distributionsettypes/{}", t.id) },
                "mandatorymodules": { "href": format!("{b}/distributionsettypes/{}/mandatorymoduletypes", t.id) },
                "optionalmodules": { "href": format!("{b}/distributionsettypes/{}/optionalmoduletypes", t.id) },
            }
        }),
        audit(t.created_at, t.created_at),
    )
}

/// What the list and get handlers of software module types and distribution set
/// types share: both live in a map keyed by `key` and are addressed by `id`.
trait MgmtType: Sized + 'static {
    /// In error messages and id parsing: `software module type`, `distribution set type`.
    const WHAT: &'static str;
    fn all(st: &State) -> &std::collections::BTreeMap<String, Self>;
    fn id(&self) -> u64;
    fn to_json(&self, b: &str) -> Value;

    /// The type with this id, or 404 `<what> <id> not found`.
    fn by_id(st: &State, id: u64) -> Res<&Self> {
        Self::all(st)
            .values()
            .find(|t| t.id() == id)
            .ok_or_else(|| Failure::not_found(format!("{} {id} not found", Self::WHAT)))
    }
}

impl MgmtType for SmType {
    const WHAT: &'static str = "software module type";
    fn all(st: &State) -> &std::collections::BTreeMap<String, Self> {
        &st.sm_types
    }
    fn id(&self) -> u64 {
        self.id
    }
    fn to_json(&self, b: &str) -> Value {
        sm_type_json(b, self)
    }
}

impl MgmtType for DsType {
    const WHAT: &'static str = "distribution set type";
    fn all(st: &State) -> &std::collections::BTreeMap<String, Self> {
        &st.ds_types
    }
    fn id(&self) -> u64 {
        self.id
    }
    fn to_json(&self, b: &str) -> Value {
        ds_type_json(b, self)
    }
}

/// `GET /softwaremoduletypes`, `GET /distributionsettypes`: paged, by id.
async fn type_list<T: MgmtType>(AxState(sh): Sh, Query(q): Q, headers: HeaderMap) -> Response {
    done((|| {
        let st = sh.state();
        let b = base(&headers, &sh);
        let mut types: Vec<&T> = T::all(&st).values().collect();
        types.sort_by_key(|t| t.id());
        Ok(json_get(
            &headers,
            &page(types.into_iter().map(|t| t.to_json(&b)).collect(), &q)?,
        ))
    })())
}

/// `GET /softwaremoduletypes/{id}`, `GET /distributionsettypes/{id}`.
async fn type_get<T: MgmtType>(
    AxState(sh): Sh,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let id = id_of(&id, T::WHAT)?;
        let st = sh.state();
        let t = T::by_id(&st, id)?;
        Ok(json_get(&headers, &t.to_json(&base(&headers, &sh))))
    })())
}

async fn sm_type_create(AxState(sh): Sh, headers: HeaderMap, body: Bytes) -> Response {
    create_each(
        &sh,
        &headers,
        &body,
        r#"[{"key":"config","name":"Configuration","maxAssignments":1}]"#,
        "software module type",
        |st, o, w, now| {
            w.unknown_fields(
                "softwaremoduletype",
                o,
                &["key", "name", "description", "colour", "maxAssignments"],
                &[("type", "key"), ("max", "maxAssignments")],
            );
            let max = match opt_i64(o, "maxAssignments", "softwaremoduletype")? {
                None => 1,
                Some(n) => u32::try_from(n).map_err(|_| {
                    Failure::bad("softwaremoduletype: 'maxAssignments' must be at least 1")
                })?,
            };
            let key = req_str(o, "key", "softwaremoduletype")?;
            st.add_sm_type(
                key,
                req_str(o, "name", "softwaremoduletype")?,
                opt_str(o, "description", "softwaremoduletype")?.unwrap_or(""),
                max,
                now,
            )?;
            Ok(key.to_owned())
        },
        |st, b, k| st.sm_types.get(k).map(|t| sm_type_json(b, t)),
    )
}

/// `[{"id":7}, …]` of module type ids → their keys.
fn module_type_keys(st: &State, o: &Map<String, Value>, field: &str) -> Res<Vec<String>> {
    let Some(v) = o.get(field).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let bad = || {
        Failure::bad(format!(
            "distributionsettype: '{field}' must be an array like [{{\"id\":1}}]"
        ))
    };
    let mut keys = Vec::new();
    for m in v.as_array().ok_or_else(bad)? {
        let id = m.get("id").and_then(Value::as_u64).ok_or_else(bad)?;
        keys.push(st.sm_type_key(id)?.to_owned());
    }
    Ok(keys)
}

async fn ds_type_create(AxState(sh): Sh, headers: HeaderMap, body: Bytes) -> Response {
    create_each(
        &sh,
        &headers,
        &body,
        r#"[{"key":"os_config","name":"OS with config","mandatorymodules":[{"id":1}],"optionalmodules":[{"id":7}]}]"#,
        "distribution set type",
        |st, o, w, now| {
            w.unknown_fields(
                "distributionsettype",
                o,
                &[
                    "key",
                    "name",
                    "description",
                    "colour",
                    "mandatorymodules",
                    "optionalmodules",
                ],
                &[
                    ("mandatoryModules", "mandatorymodules"),
                    ("optionalModules", "optionalmodules"),
                ],
            );
            let mandatory = module_type_keys(st, o, "mandatorymodules")?;
            let optional = module_type_keys(st, o, "optionalmodules")?;
            let m: Vec<&str> = mandatory.iter().map(String::as_str).collect();
            let op: Vec<&str> = optional.iter().map(String::as_str).collect();
            let key = req_str(o, "key", "distributionsettype")?;
            st.add_ds_type(
                key,
                req_str(o, "name", "distributionsettype")?,
                opt_str(o, "description", "distributionsettype")?.unwrap_or(""),
                &m,
                &op,
                now,
            )?;
            Ok(key.to_owned())
        },
        |st, b, k| st.ds_types.get(k).map(|t| ds_type_json(b, t)),
    )
}

// ------------------------------------------------------------------ distribution sets

fn ds_json(st: &State, b: &str, d: &DistributionSet) -> Value {
    let complete = st.ds_complete(d);
    merge(
        json!({
            "id": d.id, "name": d.name, "version": d.version, "type": d.kind,
            "typeName": st.ds_types.get(&d.kind).map_or(d.kind.as_str(), |t| t.name.as_str()),
            "description": d.description, "complete": complete, "valid": true, "locked": d.locked, "deleted": false,
            "requiredMigrationStep": d.required_migration_step,
            "modules": d.modules.iter().filter_map(|m| st.modules.get(m)).map(|m| sm_json(b, m)).collect::<Vec<_>>(),
            "_links": {
                "self": { "href": format!("{b}/distributionsets/{}", d.id) },
                "modules": { "href": format!("{b}/distributionsets/{}/assignedSM?offset=0&limit=50", d.id) },
                "type": { "href": format!("{b}/distributionsettypes/{}", d.kind) },
                "metadata": { "href": format!("{b}/distributionsets/{}/metadata?offset=0&limit=50", d.id) },
            }
        }),
        audit(d.created_at, d.created_at),
    )
}

async fn ds_create(AxState(sh): Sh, headers: HeaderMap, body: Bytes) -> Response {
    create_each(
        &sh,
        &headers,
        &body,
        r#"[{"name":"fw","version":"1.2.0","type":"os","modules":[{"id":7}]}]"#,
        "distribution set",
        |st, o, w, now| {
            w.unknown_fields(
                "distributionset",
                o,
                &[
                    "name",
                    "version",
                    "type",
                    "description",
                    "modules",
                    "requiredMigrationStep",
                ],
                &[("softwareModules", "modules"), ("moduleIds", "modules")],
            );
            let mut mods = Vec::new();
            if let Some(ms) = o.get("modules").filter(|m| !m.is_null()) {
                let arr = ms.as_array().ok_or_else(|| {
                    Failure::bad("distributionset: 'modules' must be an array like [{\"id\":7}]")
                })?;
                for m in arr {
                    let id = m.get("id").and_then(Value::as_u64).ok_or_else(|| {
                        Failure::bad(
                            "distributionset: each module must be an object like {\"id\":7}",
                        )
                    })?;
                    mods.push(id);
                }
            }
            let id = st.create_ds(
                req_str(o, "name", "distributionset")?,
                req_str(o, "version", "distributionset")?,
                opt_str(o, "type", "distributionset")?.unwrap_or("os_app"),
                opt_str(o, "description", "distributionset")?.unwrap_or(""),
                &mods,
                opt_bool(o, "requiredMigrationStep", "distributionset")?.unwrap_or(false),
                now,
            )?;
            Ok(id)
        },
        |st, b, i| st.sets.get(i).map(|d| ds_json(st, b, d)),
    )
}

async fn ds_list(AxState(sh): Sh, Query(q): Q, headers: HeaderMap) -> Response {
    done((|| {
        let expr = entity_filter(&q, "distribution sets")?;
        let st = sh.state();
        let b = base(&headers, &sh);
        let items = st
            .sets
            .values()
            .filter(|d| {
                entity_matches(
                    expr.as_ref(),
                    d.id,
                    &d.name,
                    &d.version,
                    &d.kind,
                    &d.description,
                )
            })
            .map(|d| ds_json(&st, &b, d))
            .collect();
        Ok(json_get(&headers, &page(items, &q)?))
    })())
}

async fn ds_get(AxState(sh): Sh, Path(id): Path<String>, headers: HeaderMap) -> Response {
    done((|| {
        let st = sh.state();
        let id = id_of(&id, "distribution set")?;
        let d = st
            .sets
            .get(&id)
            .ok_or_else(|| Failure::not_found(format!("distribution set {id} not found")))?;
        Ok(json_get(&headers, &ds_json(&st, &base(&headers, &sh), d)))
    })())
}

// ------------------------------------------------------------------ targets

fn target_json(st: &State, b: &str, t: &Target) -> Value {
    let cid = &t.controller_id;
    let mut v = merge(
        json!({
            "controllerId": cid, "name": t.name, "description": t.description, "securityToken": t.security_token,
            "updateStatus": t.update_status, "requestAttributes": t.request_attributes,
            "autoConfirmActive": t.auto_confirm.is_some(),
            "_links": {
                "self": { "href": format!("{b}/targets/{cid}") },
                "assignedDS": { "href": format!("{b}/targets/{cid}/assignedDS") },
                "installedDS": { "href": format!("{b}/targets/{cid}/installedDS") },
                "attributes": { "href": format!("{b}/targets/{cid}/attributes") },
                "actions": { "href": format!("{b}/targets/{cid}/actions?offset=0&limit=50&sort=id%3ADESC") },
                "metadata": { "href": format!("{b}/targets/{cid}/metadata?offset=0&limit=50") },
            }
        }),
        audit(t.created_at, t.modified_at),
    );
    if let Some(p) = t.last_poll {
        let secs = parse_polling(&st.config.polling_time)
            .map(|p| p.0)
            .unwrap_or(300) as i64;
        let overdue = super::time::parse_hms(&st.config.polling_overdue_time).unwrap_or(300) as i64;
        let next = p + secs * 1000;
        v["lastControllerRequestAt"] = json!(p);
        v["pollStatus"] = json!({ "lastRequestAt": p, "nextExpectedRequestAt": next, "overdue": now_ms() > next + overdue * 1000 });
    }
    if let Some(ip) = &t.ip {
        v["ipAddress"] = json!(ip);
        v["address"] = json!(format!("http://{ip}"));
    }
    if let Some(a) = &t.address {
        v["address"] = json!(a);
    }
    if let Some(i) = t.installation_date {
        v["installedAt"] = json!(i);
    }
    v
}

async fn target_create(AxState(sh): Sh, headers: HeaderMap, body: Bytes) -> Response {
    create_each(
        &sh,
        &headers,
        &body,
        r#"[{"controllerId":"dev-01","name":"dev-01","securityToken":"…"}]"#,
        "target",
        |st, o, w, now| {
            w.unknown_fields(
                "target",
                o,
                &[
                    "controllerId",
                    "name",
                    "description",
                    "securityToken",
                    "address",
                    "requestAttributes",
                    "targetType",
                    "group",
                ],
                &[
                    ("id", "controllerId"),
                    ("controllerid", "controllerId"),
                    ("token", "securityToken"),
                    ("targetToken", "securityToken"),
                ],
            );
            let cid = req_str(o, "controllerId", "target")?;
            let name = opt_str(o, "name", "target")?;
            let t = st.create_target(
                cid,
                name,
                opt_str(o, "description", "target")?.unwrap_or(""),
                opt_str(o, "securityToken", "target")?,
                opt_str(o, "address", "target")?,
                now,
            )?;
            let cid = t.controller_id.clone();
            if let Some(false) = opt_bool(o, "requestAttributes", "target")?
                && let Some(t) = st.targets.get_mut(&cid)
            {
                t.request_attributes = false;
            }
            Ok(cid)
        },
        |st, b, c| st.targets.get(c).map(|t| target_json(st, b, t)),
    )
}

async fn target_list(AxState(sh): Sh, Query(q): Q, headers: HeaderMap) -> Response {
    done((|| {
        let expr = match q.get("q") {
            Some(s) if !s.is_empty() => Some(Expr::parse(s).map_err(Failure::bad)?),
            _ => None,
        };
        let st = sh.state();
        let b = base(&headers, &sh);
        let items = st
            .query_targets(expr.as_ref())
            .into_iter()
            .map(|t| target_json(&st, &b, t))
            .collect();
        Ok(json_get(&headers, &page(items, &q)?))
    })())
}

fn target<'a>(st: &'a State, cid: &str) -> Res<&'a Target> {
    st.targets
        .get(cid)
        .ok_or_else(|| Failure::not_found(format!("target '{}' not found", clip(cid))))
}

async fn target_get(AxState(sh): Sh, Path(cid): Path<String>, headers: HeaderMap) -> Response {
    done((|| {
        let st = sh.state();
        Ok(json_get(
            &headers,
            &target_json(&st, &base(&headers, &sh), target(&st, &cid)?),
        ))
    })())
}

/// `PUT /targets/{id}`: update name, description, address, securityToken, requestAttributes.
async fn target_update(
    AxState(sh): Sh,
    Path(cid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    done((|| {
        check_json_ct(&headers)?;
        let v = parse_body(&body)?;
        let o = obj(&v, "target update")?;
        let mut w = Warnings::default();
        w.unknown_fields(
            "target",
            o,
            &[
                "controllerId",
                "name",
                "description",
                "securityToken",
                "address",
                "requestAttributes",
                "targetType",
            ],
            &[("token", "securityToken")],
        );
        let ctx = "target";
        let (name, desc, token, addr, req) = (
            opt_str(o, "name", ctx)?,
            opt_str(o, "description", ctx)?,
            opt_str(o, "securityToken", ctx)?,
            opt_str(o, "address", ctx)?,
            opt_bool(o, "requestAttributes", ctx)?,
        );
        let mut st = sh.state();
        let update = TargetUpdate {
            name,
            description: desc,
            security_token: token,
            address: addr,
            request_attributes: req,
        };
        st.update_target(&cid, update, now_ms())?;
        let t = target(&st, &cid)?;
        Ok(w.apply(json_resp(
            StatusCode::OK,
            &target_json(&st, &base(&headers, &sh), t),
        )))
    })())
}

async fn target_delete(AxState(sh): Sh, Path(cid): Path<String>, _body: Bytes) -> Response {
    done((|| {
        sh.state().delete_target(&cid)?;
        Ok(StatusCode::OK.into_response())
    })())
}

async fn target_attributes(
    AxState(sh): Sh,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        Ok(json_get(&headers, &json!(target(&st, &cid)?.attributes)))
    })())
}

async fn target_assigned_ds(
    AxState(sh): Sh,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        let t = target(&st, &cid)?;
        Ok(match t.assigned_ds.and_then(|d| st.sets.get(&d)) {
            Some(d) => json_get(&headers, &ds_json(&st, &base(&headers, &sh), d)),
            None => StatusCode::NO_CONTENT.into_response(),
        })
    })())
}

async fn target_installed_ds(
    AxState(sh): Sh,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        let t = target(&st, &cid)?;
        Ok(match t.installed_ds.and_then(|d| st.sets.get(&d)) {
            Some(d) => json_get(&headers, &ds_json(&st, &base(&headers, &sh), d)),
            None => StatusCode::NO_CONTENT.into_response(),
        })
    })())
}

const ASSIGN_FIELDS: &[&str] = &[
    "id",
    "type",
    "forcetime",
    "weight",
    "confirmationRequired",
    "maintenanceWindow",
];
const ASSIGN_HINTS: &[(&str, &str)] = &[
    ("forceTime", "forcetime"),
    ("actionType", "type"),
    ("dsId", "id"),
    ("distributionSetId", "id"),
    ("maintenance", "maintenanceWindow"),
];

fn assign_opts(o: &Map<String, Value>, w: &mut Warnings, ctx: &str) -> Res<AssignOptions> {
    w.unknown_fields(ctx, o, ASSIGN_FIELDS, ASSIGN_HINTS);
    let mut opts = AssignOptions {
        kind: ActionType::parse(opt_str(o, "type", ctx)?.unwrap_or("forced"))?,
        forcetime: opt_i64(o, "forcetime", ctx)?.unwrap_or(0),
        weight: opt_i64(o, "weight", ctx)?,
        window: None,
        confirmation_required: None,
    };
    opts.check(ctx)?;
    opts.window = match o.get("maintenanceWindow") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            let f = |k: &str| req_str(m, k, "maintenanceWindow");
            Some(
                MaintenanceWindow::new(f("schedule")?, f("duration")?, f("timezone")?).map_err(
                    |e| Failure::new(400, "hawkbit.server.error.maintenanceScheduleInvalid", e),
                )?,
            )
        }
        Some(_) => {
            return Err(Failure::bad(format!(
                "{ctx}: 'maintenanceWindow' must be an object {{\"schedule\":\"0 0 2 ? * *\",\"duration\":\"01:00:00\",\"timezone\":\"+00:00\"}}"
            )));
        }
    };
    opts.confirmation_required = opt_bool(o, "confirmationRequired", ctx)?;
    Ok(opts)
}

fn assign_response(b: &str, results: &[(String, Assigned)]) -> Value {
    let assigned = results
        .iter()
        .filter(|(_, r)| matches!(r, Assigned::New(_)))
        .count();
    let actions: Vec<Value> = results
        .iter()
        .filter_map(|(t, r)| match r {
            Assigned::New(id) => Some(json!({"id": id, "_links": {"self": {"href": format!("{b}/targets/{t}/actions/{id}")}}})),
            Assigned::Already(_) => None,
        })
        .collect();
    json!({ "assigned": assigned, "alreadyAssigned": results.len() - assigned, "total": results.len(), "assignedActions": actions })
}

async fn target_assign(
    AxState(sh): Sh,
    Path(cid): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    done((|| {
        check_json_ct(&headers)?;
        let v = parse_body(&body)?;
        let items = match v {
            Value::Array(a) => a,
            o @ Value::Object(_) => vec![o],
            _ => {
                return Err(Failure::bad(
                    "assignedDS takes an object (or array) like {\"id\":5,\"type\":\"forced\"}",
                ));
            }
        };
        if items.len() != 1 {
            return Err(Failure::new(
                400,
                "hawkbit.server.error.multiassignmentNotEnabled",
                "exactly one distribution set per request: multi-assignment is not enabled",
            ));
        }
        let offline = q.get("offline").is_some_and(|v| v == "true");
        let mut w = Warnings::default();
        let o = obj(&items[0], "assignment")?;
        let ds = o.get("id").and_then(Value::as_u64).ok_or_else(|| {
            Failure::bad("assignment: 'id' (distribution set id, integer) is required")
        })?;
        let opts = assign_opts(o, &mut w, "assignment")?;
        let now = now_ms();
        let mut st = sh.state();
        let r = if offline {
            st.assign_offline(&cid, ds, now)?
        } else {
            st.assign(&cid, ds, &opts, now)?
        };
        Ok(w.apply(json_resp(
            StatusCode::OK,
            &assign_response(&base(&headers, &sh), &[(cid.clone(), r)]),
        )))
    })())
}

async fn ds_assign_targets(
    AxState(sh): Sh,
    Path(id): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    done((|| {
        check_json_ct(&headers)?;
        let ds = id_of(&id, "distribution set")?;
        let items = expect_array(parse_body(&body)?, r#"[{"id":"dev-01","type":"forced"}]"#)?;
        let offline = q.get("offline").is_some_and(|v| v == "true");
        let mut w = Warnings::default();
        let now = now_ms();
        let mut st = sh.state();
        let mut results = Vec::new();
        for it in &items {
            let o = obj(it, "assignment")?;
            let cid = req_str(o, "id", "assignment (controllerId)")?.to_string();
            let opts = assign_opts(o, &mut w, "assignedTargets")?;
            let r = if offline {
                st.assign_offline(&cid, ds, now)?
            } else {
                st.assign(&cid, ds, &opts, now)?
            };
            results.push((cid, r));
        }
        Ok(w.apply(json_resp(
            StatusCode::OK,
            &assign_response(&base(&headers, &sh), &results),
        )))
    })())
}

fn action_json(st: &State, b: &str, a: &Action) -> Value {
    let t = &a.target;
    let mut v = merge(
        json!({
            "id": a.id,
            "type": if a.status == super::model::Status::Canceling || a.status == super::model::Status::Canceled { "cancel" } else { "update" },
            "status": if a.active { "pending" } else { "finished" },
            "detailStatus": a.status.name(),
            "forceType": a.kind.name(),
            "active": a.active,
            "_links": {
                "self": { "href": format!("{b}/targets/{t}/actions/{}", a.id) },
                "target": { "href": format!("{b}/targets/{t}") },
                "distributionset": { "href": format!("{b}/distributionsets/{}", a.ds) },
                "status": { "href": format!("{b}/targets/{t}/actions/{}/status?offset=0&limit=50&sort=id%3ADESC", a.id) },
            }
        }),
        audit(a.created_at, a.modified_at),
    );
    if a.forcetime > 0 {
        v["forceTime"] = json!(a.forcetime);
    }
    if let Some(wt) = a.weight {
        v["weight"] = json!(wt);
    }
    if let Some(c) = a.last_status_code {
        v["lastStatusCode"] = json!(c);
    }
    if let Some(r) = a.rollout {
        v["rollout"] = json!(r);
        if let Some(ro) = st.rollouts.get(&r) {
            v["rolloutName"] = json!(ro.name);
        }
    }
    if let Some(w) = &a.window {
        let mut mw =
            json!({ "schedule": w.schedule, "duration": w.duration, "timezone": w.timezone });
        if let Some(n) = w.next_start_ms(now_ms()) {
            mw["nextStartAt"] = json!(n);
        }
        v["maintenanceWindow"] = mw;
    }
    v
}

async fn target_actions(
    AxState(sh): Sh,
    Path(cid): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        target(&st, &cid)?;
        let b = base(&headers, &sh);
        let asc = q
            .get("sort")
            .is_some_and(|s| s.to_ascii_uppercase().ends_with(":ASC"));
        let mut items: Vec<Value> = st
            .actions
            .values()
            .filter(|a| a.target == cid)
            .map(|a| action_json(&st, &b, a))
            .collect();
        if !asc {
            items.reverse();
        }
        Ok(json_get(&headers, &page(items, &q)?))
    })())
}

async fn actions_list(AxState(sh): Sh, Query(q): Q, headers: HeaderMap) -> Response {
    done((|| {
        let st = sh.state();
        let b = base(&headers, &sh);
        Ok(json_get(
            &headers,
            &page(
                st.actions
                    .values()
                    .map(|a| action_json(&st, &b, a))
                    .collect(),
                &q,
            )?,
        ))
    })())
}

fn action_of<'a>(st: &'a State, cid: &str, aid: &str) -> Res<&'a Action> {
    target(st, cid)?;
    let id = id_of(aid, "action")?;
    st.actions
        .get(&id)
        .filter(|a| a.target == cid)
        .ok_or_else(|| Failure::not_found(format!("action {id} of target '{cid}' not found")))
}

async fn target_action(
    AxState(sh): Sh,
    Path((cid, aid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        Ok(json_get(
            &headers,
            &action_json(&st, &base(&headers, &sh), action_of(&st, &cid, &aid)?),
        ))
    })())
}

async fn target_action_cancel(
    AxState(sh): Sh,
    Path((cid, aid)): Path<(String, String)>,
    Query(q): Q,
    _body: Bytes,
) -> Response {
    done((|| {
        let id = id_of(&aid, "action")?;
        let force = q.get("force").is_some_and(|v| v == "true");
        sh.state().cancel_action(&cid, id, force, now_ms())?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

async fn target_action_status(
    AxState(sh): Sh,
    Path((cid, aid)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        let a = action_of(&st, &cid, &aid)?;
        let asc = q
            .get("sort")
            .is_some_and(|s| s.to_ascii_uppercase().ends_with(":ASC"));
        let mut items: Vec<Value> = a
            .history
            .iter()
            .map(|h| {
                let mut v = json!({ "id": h.id, "type": h.status.name(), "messages": h.messages, "reportedAt": h.reported_at, "timestamp": h.timestamp });
                if let Some(c) = h.code {
                    v["code"] = json!(c);
                }
                v
            })
            .collect();
        if !asc {
            items.reverse();
        }
        Ok(json_get(&headers, &page(items, &q)?))
    })())
}

// ------------------------------------------------------------------ system configs

fn config_json(b: &str, key: &str, v: Value) -> Value {
    json!({ "value": v, "global": false, "_links": { "self": { "href": format!("{b}/system/configs/{key}") } } })
}

async fn configs_list(AxState(sh): Sh, headers: HeaderMap) -> Response {
    let st = sh.state();
    let b = base(&headers, &sh);
    let mut m = Map::new();
    for k in CONFIG_KEYS {
        if let Some(v) = st.config_value(k) {
            m.insert((*k).into(), config_json(&b, k, v));
        }
    }
    json_get(&headers, &Value::Object(m))
}

async fn config_get(AxState(sh): Sh, Path(key): Path<String>, headers: HeaderMap) -> Response {
    let st = sh.state();
    match st.config_value(&key) {
        Some(v) => json_get(&headers, &config_json(&base(&headers, &sh), &key, v)),
        None => Failure::not_found(format!(
            "configuration key '{}' is not supported",
            clip(&key)
        ))
        .into_response(),
    }
}

async fn config_put(
    AxState(sh): Sh,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    done((|| {
        check_json_ct(&headers)?;
        let v = parse_body(&body)?;
        let val = v
            .get("value")
            .ok_or_else(|| Failure::bad("body must be {\"value\": …}"))?;
        let mut st = sh.state();
        st.set_config(&key, val)?;
        let cur = st.config_value(&key).unwrap_or(Value::Null);
        Ok(json_resp(
            StatusCode::OK,
            &config_json(&base(&headers, &sh), &key, cur),
        ))
    })())
}

async fn config_delete(AxState(sh): Sh, Path(key): Path<String>, _body: Bytes) -> Response {
    done((|| {
        sh.state().reset_config(&key)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

// ------------------------------------------------------------------ rollouts

fn threshold(o: &Map<String, Value>, k: &str, default: f64, ctx: &str) -> Res<f64> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Object(c)) => {
            let cond = opt_str(c, "condition", k)?.unwrap_or("THRESHOLD");
            if cond != "THRESHOLD" {
                return Err(Failure::bad(format!(
                    "{ctx}: {k}.condition '{cond}' is not supported; use \"THRESHOLD\""
                )));
            }
            let e = match c.get("expression") {
                Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
                Some(Value::Number(n)) => n.as_f64(),
                _ => None,
            }
            .filter(|p| (0.0..=100.0).contains(p))
            .ok_or_else(|| Failure::bad(format!("{ctx}: {k}.expression must be a percentage \"0\"..\"100\", e.g. {{\"condition\":\"THRESHOLD\",\"expression\":\"95\"}}")))?;
            Ok(e)
        }
        Some(_) => Err(Failure::bad(format!(
            "{ctx}: '{k}' must be an object {{\"condition\":\"THRESHOLD\",\"expression\":\"95\"}}"
        ))),
    }
}

fn action_field(
    o: &Map<String, Value>,
    k: &str,
    allowed: &[&str],
    default: &str,
    ctx: &str,
) -> Res<String> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(default.into()),
        Some(Value::Object(c)) => {
            let a = opt_str(c, "action", k)?.unwrap_or(default);
            if allowed.contains(&a) {
                Ok(a.into())
            } else {
                Err(Failure::bad(format!(
                    "{ctx}: {k}.action '{a}' must be one of {}",
                    allowed.join(", ")
                )))
            }
        }
        Some(_) => Err(Failure::bad(format!(
            "{ctx}: '{k}' must be an object like {{\"action\":\"{default}\",\"expression\":\"\"}}"
        ))),
    }
}

fn conditions(o: &Map<String, Value>, inherit: Conditions, ctx: &str) -> Res<Conditions> {
    let default_next = if inherit.success_next_group {
        "NEXTGROUP"
    } else {
        "PAUSE"
    };
    Ok(Conditions {
        success_pct: threshold(o, "successCondition", inherit.success_pct, ctx)?,
        success_next_group: action_field(
            o,
            "successAction",
            &["NEXTGROUP", "PAUSE"],
            default_next,
            ctx,
        )? == "NEXTGROUP",
        error_pct: {
            action_field(o, "errorAction", &["PAUSE"], "PAUSE", ctx)?;
            threshold(o, "errorCondition", inherit.error_pct, ctx)?
        },
    })
}

const ROLLOUT_FIELDS: &[&str] = &[
    "name",
    "description",
    "distributionSetId",
    "targetFilterQuery",
    "amountGroups",
    "groups",
    "successCondition",
    "successAction",
    "errorCondition",
    "errorAction",
    "type",
    "forcetime",
    "startAt",
    "weight",
    "confirmationRequired",
    "dynamic",
    "dynamicGroupTemplate",
];
const ROLLOUT_HINTS: &[(&str, &str)] = &[
    ("successThreshold", "successCondition.expression"),
    ("errorThreshold", "errorCondition.expression"),
    ("groupCount", "amountGroups"),
    ("numberOfGroups", "amountGroups"),
    ("groupsAmount", "amountGroups"),
    ("distributionSet", "distributionSetId"),
    ("dsId", "distributionSetId"),
    ("filter", "targetFilterQuery"),
    ("targetFilter", "targetFilterQuery"),
    ("query", "targetFilterQuery"),
    ("actionType", "type"),
    ("forceTime", "forcetime"),
];
const GROUP_FIELDS: &[&str] = &[
    "name",
    "description",
    "targetFilterQuery",
    "targetPercentage",
    "successCondition",
    "successAction",
    "errorCondition",
    "errorAction",
    "confirmationRequired",
];
const GROUP_HINTS: &[(&str, &str)] = &[
    ("percentage", "targetPercentage"),
    ("percent", "targetPercentage"),
    ("successThreshold", "successCondition.expression"),
    ("errorThreshold", "errorCondition.expression"),
    ("filter", "targetFilterQuery"),
];

async fn rollout_create(AxState(sh): Sh, headers: HeaderMap, body: Bytes) -> Response {
    done((|| {
        check_json_ct(&headers)?;
        let v = parse_body(&body)?;
        if v.is_array() {
            return Err(Failure::new(
                400,
                "hawkbit.server.error.rest.body.notReadable",
                "rollouts are created one at a time: send a single JSON object {\"name\":…,\"distributionSetId\":5,\"targetFilterQuery\":\"…\",\"amountGroups\":4}, not an array",
            ));
        }
        let o = obj(&v, "rollout")?;
        let ctx = "rollout";
        let mut w = Warnings::default();
        w.unknown_fields(ctx, o, ROLLOUT_FIELDS, ROLLOUT_HINTS);
        let name = req_str(o, "name", ctx)?;
        let ds = o
            .get("distributionSetId")
            .and_then(Value::as_u64)
            .ok_or_else(|| Failure::bad("rollout: 'distributionSetId' (integer) is required"))?;
        let filter = req_str(o, "targetFilterQuery", ctx)?;
        if opt_bool(o, "dynamic", ctx)? == Some(true) {
            return Err(Failure::bad(
                "rollout: dynamic rollouts are not supported by hawkbit-sim",
            ));
        }
        let kind = ActionType::parse(opt_str(o, "type", ctx)?.unwrap_or("forced"))?;
        let forcetime = opt_i64(o, "forcetime", ctx)?.unwrap_or(0);
        if kind == ActionType::TimeForced && forcetime <= 0 {
            return Err(Failure::bad("rollout: type 'timeforced' needs 'forcetime'"));
        }
        let defaults = conditions(
            o,
            Conditions {
                success_pct: 50.0,
                success_next_group: true,
                error_pct: 50.0,
            },
            ctx,
        )?;
        let amount = opt_i64(o, "amountGroups", ctx)?;
        let groups_v = o.get("groups").filter(|g| !g.is_null());
        let groups = match (amount, groups_v) {
            (Some(_), Some(_)) => {
                return Err(Failure::bad(
                    "rollout: 'amountGroups' and 'groups' are mutually exclusive; give one",
                ));
            }
            (_, Some(g)) => {
                let arr = g.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                    Failure::bad("rollout: 'groups' must be a non-empty array of group objects")
                })?;
                if arr.len() > 500 {
                    return Err(Failure::bad("rollout: at most 500 groups"));
                }
                let mut out = Vec::new();
                for (i, g) in arr.iter().enumerate() {
                    let go = obj(g, "group")?;
                    w.unknown_fields("rollout group", go, GROUP_FIELDS, GROUP_HINTS);
                    let pct = match go.get("targetPercentage") {
                        None | Some(Value::Null) => 100.0,
                        Some(p) => p.as_f64().filter(|p| *p > 0.0 && *p <= 100.0).ok_or_else(
                            || {
                                Failure::bad(
                                    "rollout group: 'targetPercentage' must be a number in 1..100",
                                )
                            },
                        )?,
                    };
                    out.push((
                        opt_str(go, "name", "group")?
                            .map_or_else(|| format!("group-{}", i + 1), String::from),
                        opt_str(go, "description", "group")?
                            .unwrap_or("")
                            .to_string(),
                        opt_str(go, "targetFilterQuery", "group")?
                            .filter(|s| !s.is_empty())
                            .map(String::from),
                        pct,
                        conditions(go, defaults, "rollout group")?,
                        opt_bool(go, "confirmationRequired", "group")?,
                    ));
                }
                out
            }
            (n, None) => {
                let n = n.unwrap_or(1);
                if !(1..=500).contains(&n) {
                    return Err(Failure::bad("rollout: 'amountGroups' must be 1..500"));
                }
                (0..n)
                    .map(|i| {
                        (
                            format!("group-{}", i + 1),
                            String::new(),
                            None,
                            100.0 / n as f64,
                            defaults,
                            None,
                        )
                    })
                    .collect()
            }
        };
        let now = now_ms();
        let mut st = sh.state();
        let id = st.create_rollout(
            name,
            opt_str(o, "description", ctx)?.unwrap_or(""),
            ds,
            filter,
            kind,
            forcetime,
            opt_i64(o, "startAt", ctx)?,
            opt_i64(o, "weight", ctx)?,
            opt_bool(o, "confirmationRequired", ctx)?,
            groups,
            now,
        )?;
        let r = st
            .rollouts
            .get(&id)
            .ok_or_else(|| Failure::not_found("rollout vanished"))?;
        Ok(w.apply(json_resp(
            StatusCode::CREATED,
            &rollout_json(&st, &base(&headers, &sh), r),
        )))
    })())
}

fn rollout_json(st: &State, b: &str, r: &Rollout) -> Value {
    let id = r.id;
    let total: usize = st.rollout_groups(id).iter().map(|g| g.targets.len()).sum();
    let l = |op: &str| json!({ "href": format!("{b}/rollouts/{id}/{op}") });
    let mut v = merge(
        json!({
            "id": id, "name": r.name, "description": r.description, "status": r.status,
            "targetFilterQuery": r.filter, "distributionSetId": r.ds, "totalTargets": total,
            "totalTargetsPerStatus": st.per_status(id, None), "totalGroups": r.groups.len(),
            "type": r.kind.name(), "dynamic": false, "deleted": false, "confirmationRequired": r.confirmation_required,
            "_links": {
                "start": l("start"), "pause": l("pause"), "resume": l("resume"), "triggerNextGroup": l("triggerNextGroup"),
                "approve": l("approve"), "deny": l("deny"),
                "groups": { "href": format!("{b}/rollouts/{id}/deploygroups?offset=0&limit=50") },
                "distributionset": { "href": format!("{b}/distributionsets/{}", r.ds) },
                "self": { "href": format!("{b}/rollouts/{id}") },
            }
        }),
        audit(r.created_at, r.modified_at),
    );
    if let Some(s) = r.start_at {
        v["startAt"] = json!(s);
    }
    if r.forcetime > 0 {
        v["forcetime"] = json!(r.forcetime);
    }
    if let Some(wt) = r.weight {
        v["weight"] = json!(wt);
    }
    v
}

fn group_json(st: &State, b: &str, g: &super::model::Group, full: bool) -> Value {
    let mut v = json!({
        "id": g.id, "name": g.name, "description": g.description, "status": g.status,
        "totalTargets": g.targets.len(), "targetPercentage": g.percentage,
        "successCondition": { "condition": "THRESHOLD", "expression": fmt_pct(g.cond.success_pct) },
        "successAction": { "action": if g.cond.success_next_group { "NEXTGROUP" } else { "PAUSE" }, "expression": "" },
        "errorCondition": { "condition": "THRESHOLD", "expression": fmt_pct(g.cond.error_pct) },
        "errorAction": { "action": "PAUSE", "expression": "" },
        "confirmationRequired": g.confirmation_required,
        "_links": { "self": { "href": format!("{b}/rollouts/{}/deploygroups/{}", g.rollout, g.id) } },
    });
    if let Some(f) = &g.filter {
        v["targetFilterQuery"] = json!(f);
    }
    if full {
        v["totalTargetsPerStatus"] = st.per_status(g.rollout, Some(g.id));
    }
    v
}

fn fmt_pct(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

fn rollout<'a>(st: &'a State, id: &str) -> Res<&'a Rollout> {
    let id = id_of(id, "rollout")?;
    st.rollouts
        .get(&id)
        .ok_or_else(|| Failure::not_found(format!("rollout {id} not found")))
}

async fn rollout_list(AxState(sh): Sh, Query(q): Q, headers: HeaderMap) -> Response {
    done((|| {
        let st = sh.state();
        let b = base(&headers, &sh);
        Ok(json_get(
            &headers,
            &page(
                st.rollouts
                    .values()
                    .map(|r| rollout_json(&st, &b, r))
                    .collect(),
                &q,
            )?,
        ))
    })())
}

async fn rollout_get(AxState(sh): Sh, Path(id): Path<String>, headers: HeaderMap) -> Response {
    done((|| {
        let st = sh.state();
        Ok(json_get(
            &headers,
            &rollout_json(&st, &base(&headers, &sh), rollout(&st, &id)?),
        ))
    })())
}

async fn rollout_op(
    AxState(sh): Sh,
    Path((id, op)): Path<(String, String)>,
    _body: Bytes,
) -> Response {
    done((|| {
        let now = now_ms();
        let mut st = sh.state();
        let id = rollout(&st, &id)?.id;
        match op.as_str() {
            "start" => st.start_rollout(id, now)?,
            "pause" => st.pause_rollout(id, now)?,
            "resume" => st.resume_rollout(id, now)?,
            "triggerNextGroup" => st.trigger_next_group(id, now)?,
            other => {
                return Err(Failure::not_found(format!(
                    "rollout operation '{}' is not supported by hawkbit-sim (start, pause, resume, triggerNextGroup)",
                    clip(other)
                )));
            }
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

async fn group_list(
    AxState(sh): Sh,
    Path(id): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        let r = rollout(&st, &id)?;
        let full = q.get("representation").is_some_and(|v| v == "full");
        let b = base(&headers, &sh);
        let items = st
            .rollout_groups(r.id)
            .into_iter()
            .map(|g| group_json(&st, &b, g, full))
            .collect();
        Ok(json_get(&headers, &page(items, &q)?))
    })())
}

fn group_of<'a>(st: &'a State, id: &str, gid: &str) -> Res<&'a super::model::Group> {
    let r = rollout(st, id)?;
    let gid = id_of(gid, "group")?;
    st.groups
        .get(&gid)
        .filter(|g| g.rollout == r.id)
        .ok_or_else(|| Failure::not_found(format!("group {gid} of rollout {} not found", r.id)))
}

async fn group_get(
    AxState(sh): Sh,
    Path((id, gid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        Ok(json_get(
            &headers,
            &group_json(&st, &base(&headers, &sh), group_of(&st, &id, &gid)?, true),
        ))
    })())
}

async fn group_targets(
    AxState(sh): Sh,
    Path((id, gid)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    done((|| {
        let st = sh.state();
        let g = group_of(&st, &id, &gid)?;
        let b = base(&headers, &sh);
        let items = g
            .targets
            .iter()
            .filter_map(|t| st.targets.get(t))
            .map(|t| target_json(&st, &b, t))
            .collect();
        Ok(json_get(&headers, &page(items, &q)?))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(body: &[u8], step: usize) -> bool {
        let mut scan = PartScan::new("bnd");
        body.chunks(step).all(|c| scan.feed(c))
    }

    fn part(header: &str, data: &[u8]) -> Vec<u8> {
        [
            format!("--bnd\r\n{header}\r\n\r\n").as_bytes(),
            data,
            b"\r\n",
        ]
        .concat()
    }

    #[test]
    fn part_headers_are_measured_across_chunk_borders() {
        let data = b"\r\n--bn\r\n\r\n--bnx\r\r\n\r\n".repeat(500);
        let ok = [
            part(
                "Content-Disposition: form-data; name=\"file\"; filename=\"a\"",
                &data,
            ),
            b"--bnd--\r\n".to_vec(),
            vec![b'e'; 3 * MAX_PART_HEADER],
        ]
        .concat();
        let long = |n: usize| {
            part(
                &format!("Content-Disposition: form-data; name=\"{}\"", "x".repeat(n)),
                b"v",
            )
        };
        let fits = long(MAX_PART_HEADER - 60);
        let over = long(MAX_PART_HEADER);
        let preamble = [
            vec![b'p'; MAX_PART_HEADER + 1],
            b"\r\n".to_vec(),
            part("H: v", b"v"),
        ]
        .concat();
        for step in [1, 7, 4096, usize::MAX] {
            assert!(feed_all(&ok, step), "{step}");
            assert!(feed_all(&fits, step), "{step}");
            assert!(!feed_all(&over, step), "{step}");
            assert!(!feed_all(&preamble, step), "{step}");
            // the second part's header counts on its own
            assert!(
                !feed_all(&[part("H: v", b"v"), over.clone()].concat(), step),
                "{step}"
            );
        }
    }
}
