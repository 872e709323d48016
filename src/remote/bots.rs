//! The Remote Workers API v1test2 ("Bots"), the part a worker uses: `CreateBotSession` and
//! `UpdateBotSession`. No published crate ships these messages, so they are written here from
//! `google/devtools/remoteworkers/v1test2/bots.proto` and `worker.proto`, field numbers as
//! upstream (docs/notes-buildgrid.md has the table and how `BuildGrid` 0.9 plays them).

use std::time::Duration;

use bazel_remote_apis::google::protobuf::{Any, Timestamp};
use bazel_remote_apis::google::rpc::Status;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

#[derive(Clone, PartialEq, prost::Message)]
pub struct BotSession {
    /// Assigned by the server; empty when creating.
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub bot_id: String,
    #[prost(enumeration = "BotStatus", tag = "3")]
    pub status: i32,
    #[prost(message, optional, tag = "4")]
    pub worker: Option<Worker>,
    #[prost(message, repeated, tag = "5")]
    pub leases: Vec<Lease>,
    #[prost(message, optional, tag = "6")]
    pub expire_time: Option<Timestamp>,
    /// The server's version of the session, sent back as received.
    #[prost(string, tag = "7")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    #[prost(enumeration = "LeaseState", tag = "2")]
    pub state: i32,
    #[prost(message, optional, tag = "3")]
    pub status: Option<Status>,
    #[prost(message, optional, tag = "5")]
    pub expire_time: Option<Timestamp>,
    #[prost(string, tag = "7")]
    pub id: String,
    /// What to do: for REAPI servers, an `Action`.
    #[prost(message, optional, tag = "8")]
    pub payload: Option<Any>,
    /// What came of it: an `ActionResult`.
    #[prost(message, optional, tag = "9")]
    pub result: Option<Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Worker {
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<Device>,
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
    #[prost(message, repeated, tag = "3")]
    pub configs: Vec<Property>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Device {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
}

/// `Worker.Property`, `Worker.Config` and `Device.Property` share this shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Property {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateBotSessionRequest {
    #[prost(string, tag = "1")]
    pub parent: String,
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateBotSessionRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BotStatus {
    Unspecified = 0,
    Ok = 1,
    Unhealthy = 2,
    HostRebooting = 3,
    BotTerminating = 4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LeaseState {
    Unspecified = 0,
    Pending = 1,
    Active = 2,
    Completed = 4,
    Cancelled = 5,
}

/// The `Any` type URL of a message of `package.Message`.
#[must_use]
pub fn type_url(full_name: &str) -> String {
    format!("type.googleapis.com/{full_name}")
}

pub const ACTION_TYPE: &str = "build.bazel.remote.execution.v2.Action";
pub const ACTION_RESULT_TYPE: &str = "build.bazel.remote.execution.v2.ActionResult";

/// A client of the `Bots` service.
#[derive(Clone)]
pub struct BotsClient {
    inner: tonic::client::Grpc<Channel>,
}

impl BotsClient {
    #[must_use]
    pub fn new(channel: Channel) -> Self {
        Self {
            inner: tonic::client::Grpc::new(channel).max_decoding_message_size(64 << 20),
        }
    }

    pub async fn create(
        &mut self,
        request: CreateBotSessionRequest,
        wait: Duration,
    ) -> Result<BotSession, tonic::Status> {
        self.call("CreateBotSession", request, wait).await
    }

    pub async fn update(
        &mut self,
        request: UpdateBotSessionRequest,
        wait: Duration,
    ) -> Result<BotSession, tonic::Status> {
        self.call("UpdateBotSession", request, wait).await
    }

    /// One unary call with a deadline of `wait`: the server long-polls for up to 80 % of it.
    async fn call<M: prost::Message + Send + Sync + 'static>(
        &mut self,
        method: &'static str,
        message: M,
        wait: Duration,
    ) -> Result<BotSession, tonic::Status> {
        self.inner
            .ready()
            .await
            .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
        let path = PathAndQuery::try_from(format!(
            "/google.devtools.remoteworkers.v1test2.Bots/{method}"
        ))
        .map_err(|error| tonic::Status::internal(error.to_string()))?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(wait);
        let codec = tonic_prost::ProstCodec::<M, BotSession>::default();
        self.inner
            .unary(request, path, codec)
            .await
            .map(tonic::Response::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    /// The bytes other implementations produce for these fields (tags from bots.proto).
    #[test]
    fn field_numbers_are_the_upstream_ones() {
        let session = BotSession {
            name: "n".to_owned(),
            bot_id: "b".to_owned(),
            status: BotStatus::Ok as i32,
            leases: vec![Lease {
                id: "i".to_owned(),
                state: LeaseState::Completed as i32,
                ..Lease::default()
            }],
            version: "7".to_owned(),
            ..BotSession::default()
        };
        let bytes = session.encode_to_vec();
        assert_eq!(
            bytes,
            [
                0x0a, 1, b'n', 0x12, 1, b'b', 0x18, 1, 0x2a, 5, 0x10, 4, 0x3a, 1, b'i', 0x3a, 1,
                b'7'
            ]
        );
        assert_eq!(BotSession::decode(bytes.as_slice()).ok(), Some(session));
    }
}
