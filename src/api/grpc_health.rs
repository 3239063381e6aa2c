//! grpc.health.v1.Health on the client port, as etcd registers it: the whole server (the
//! empty service name) is SERVING once it serves clients at all, which in Cairn, as in etcd,
//! is only after the member has joined its cluster. Other names are unknown, as grpc-go's
//! health server answers them.

use super::pb::grpc_health_v1::{
    health_check_response::ServingStatus, health_server::Health, HealthCheckRequest,
    HealthCheckResponse,
};
use futures::StreamExt;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The one service name with a status: the whole server.
const WHOLE_SERVER: &str = "";

pub struct HealthService {
    context: super::Context,
}

impl HealthService {
    pub fn new(context: super::Context) -> Self {
        HealthService { context }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        // As etcd, whose health server sits behind the same interceptors: a learner
        // refuses it.
        self.context.admit(&request, false)?;
        if request.get_ref().service != WHOLE_SERVER {
            return Err(Status::not_found("unknown service"));
        }
        Ok(Response::new(response(ServingStatus::Serving)))
    }

    type WatchStream = WatchStream;

    /// The status now, then nothing until the client goes: Cairn's status never changes
    /// while it serves (grpc-go sends a new message only on a change).
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        self.context.admit(&request, false)?;
        let status = if request.get_ref().service == WHOLE_SERVER {
            ServingStatus::Serving
        } else {
            ServingStatus::ServiceUnknown
        };
        let stream = futures::stream::once(async move { Ok(response(status)) })
            .chain(futures::stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}
