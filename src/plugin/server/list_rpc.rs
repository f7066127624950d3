//! The list-resource RPCs (`ListResource`, `ValidateListResourceConfig`)
//! and `GenerateResourceConfig`, on the wire: decoding what Terraform
//! sends, running the [`super::super::ListResource`], streaming its items
//! with identities and objects in the managed resource's types.

use std::sync::Arc;

use tonic::Status;

use super::super::convert::{self, decode, encode};
use super::super::diag::{AttributePath, Diagnostics};
use super::super::list::{ListRequest, ListSink, config_from_state};
use super::super::proto::tfplugin6 as pb;
use super::super::resource::Provider;
use super::super::value::{Type, Value};
use super::ProviderServer;

type Events = tokio::sync::mpsc::Sender<Result<pb::list_resource::Event, Status>>;

impl<P: Provider> ProviderServer<P> {
    /// `GenerateResourceConfig`: a configuration for an existing object
    /// (what `terraform query -generate-config-out` and `plan
    /// -generate-config-out` write).
    pub(super) fn generate_config(
        &self,
        req: pb::generate_resource_config::Request,
    ) -> pb::generate_resource_config::Response {
        let mut diags = Diagnostics::new();
        let config = (|| {
            let e = self.resource(&req.type_name, &mut diags)?;
            let Some(state) = req.state.as_ref() else {
                diags.error(
                    "No state to generate a configuration from",
                    "Terraform sent no state (Terraform 1.14.0 does so for `terraform query`; 1.14.1 and later \
send it). Upgrade Terraform.",
                );
                return None;
            };
            let state = decode(Some(state), &e.ty, "resource state", &mut diags)?;
            encode(&config_from_state(&e.schema.block, &state), &e.ty, "generated configuration", &mut diags)
        })();
        pb::generate_resource_config::Response { config, diagnostics: convert::diagnostics(&diags) }
    }

    /// `ValidateListResourceConfig`: the `config` block only (Terraform
    /// 1.14–1.15 never sends `include_resource` or `limit` here).
    pub(super) fn validate_list(
        &self,
        req: pb::validate_list_resource_config::Request,
    ) -> pb::validate_list_resource_config::Response {
        let mut diags = Diagnostics::new();
        if let Some(l) = self.lists.get(req.type_name.as_str())
            && let Some(config) =
                decode(req.config.as_ref(), &l.schema().value_type(), "list configuration", &mut diags)
        {
            l.validate_config(&config, &mut diags);
        } else if !self.lists.contains_key(req.type_name.as_str()) {
            unknown_list(&req.type_name, &mut diags);
        }
        pb::validate_list_resource_config::Response { diagnostics: convert::diagnostics(&under_config(diags)) }
    }

    /// `ListResource`: runs the list on its own task and streams each item
    /// as it comes; the list's own diagnostics come last, in an event of
    /// their own (an error there fails the list block).
    pub(super) fn list(
        &self,
        req: pb::list_resource::Request,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<pb::list_resource::Event, Status>> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut diags = Diagnostics::new();
        let ready = self.list_parts(&req, &mut diags);
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let Some(ListJob { list, data, identity_ty, object_ty, config }) = ready else {
                return finish(&tx, &under_config(diags)).await;
            };
            let request = ListRequest {
                config,
                include_resource: req.include_resource_object,
                limit: usize::try_from(req.limit).unwrap_or(0),
                stop,
            };
            let (sink, mut items) = ListSink::channel();
            let include = request.include_resource;
            let forward = {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while let Some(item) = items.recv().await {
                        let mut d = item.diags;
                        let identity = encode(&item.identity, &identity_ty, "resource identity", &mut d)
                            .map(|dv| pb::ResourceIdentityData { identity_data: Some(dv) });
                        let resource_object = match (&item.object, include) {
                            (Some(o), true) => encode(o, &object_ty, "resource object", &mut d),
                            _ => None,
                        };
                        let event = pb::list_resource::Event {
                            identity,
                            display_name: item.display_name,
                            resource_object,
                            diagnostic: convert::diagnostics(&d),
                        };
                        if tx.send(Ok(event)).await.is_err() {
                            break;
                        }
                    }
                })
            };
            if request.limit > 0 {
                list.list(&data, &request, &sink, &mut diags).await;
            }
            drop(sink);
            let _ = forward.await;
            finish(&tx, &under_config(diags)).await;
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    /// What a list needs (see [`ListJob`]); problems go to `diags`.
    fn list_parts(&self, req: &pb::list_resource::Request, diags: &mut Diagnostics) -> Option<ListJob<P::Data>> {
        let Some(list) = self.lists.get(req.type_name.as_str()).cloned() else {
            unknown_list(&req.type_name, diags);
            return None;
        };
        let entry = self.resource(&req.type_name, diags)?;
        let Some((_, identity_ty)) = entry.identity.clone() else {
            diags.error(
                "List resource without an identity",
                format!("{} has no identity schema; this is a bug in the provider.", req.type_name),
            );
            return None;
        };
        let config = decode(req.config.as_ref(), &list.schema().value_type(), "list configuration", diags)?;
        list.validate_config(&config, diags);
        if diags.has_errors() {
            return None;
        }
        let data = self.context(diags)?.data;
        Some(ListJob { list, data, identity_ty, object_ty: entry.ty.clone(), config })
    }
}

/// What the task that runs a list takes along: the list type, the
/// configured provider's data, the managed resource's identity and object
/// types (each item is encoded in them) and the decoded `config`.
struct ListJob<D: Send + Sync + 'static> {
    list: Arc<dyn super::super::ListResource<D>>,
    data: Arc<D>,
    identity_ty: Type,
    object_ty: Type,
    config: Value,
}

/// The list's attribute paths as Terraform resolves them: the list
/// schema's attributes live in the list block's `config` block, which
/// Terraform adds (`ProtoToListSchema`).
fn under_config(diags: Diagnostics) -> Diagnostics {
    let mut out = Diagnostics::new();
    for mut d in diags {
        if let Some(p) = d.path.take() {
            let mut steps = AttributePath::attr("config").0;
            steps.extend(p.0);
            d.path = Some(AttributePath(steps));
        }
        out.push(d);
    }
    out
}

fn unknown_list(name: &str, diags: &mut Diagnostics) {
    diags.error("Unknown list resource type", format!("This provider has no list resource type {name:?}."));
}

/// The list's own diagnostics, as a last event, if there are any.
async fn finish(tx: &Events, diags: &Diagnostics) {
    if diags.is_empty() {
        return;
    }
    let event = pb::list_resource::Event {
        identity: None,
        display_name: String::new(),
        resource_object: None,
        diagnostic: convert::diagnostics(diags),
    };
    let _ = tx.send(Ok(event)).await;
}
