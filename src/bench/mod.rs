//! cairn-bench's library: workloads driven over etcd's v3 gRPC API only, so the same run
//! measures Cairn or etcd, and the latency histogram.

pub mod histogram;
#[cfg(not(madsim))]
pub mod workloads;
