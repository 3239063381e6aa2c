//! Compiles etcd's protocol files with protox (pure Rust, so no system `protoc`), then
//! generates prost messages, madsim-tonic services and (for the JSON gateway) serde impls
//! from the descriptor set.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/kv.proto",
        "proto/auth.proto",
        "proto/rpc.proto",
        "proto/v3lock.proto",
        "proto/v3election.proto",
        "proto/peer.proto",
        "proto/health.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptor_set = protox::compile(files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("cairn_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptor_set),
    )?;
    tonic_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        .bytes(["."])
        // Written by hand so nested txns do not spend prost's recursion budget (see it).
        .extern_path(
            ".etcdserverpb.RequestOp",
            "crate::api::txn_operations::RequestOp",
        )
        .extern_path(
            ".etcdserverpb.ResponseOp",
            "crate::api::txn_operations::ResponseOp",
        )
        .compile_protos(&files, &["proto"])?;
    // The JSON gateway speaks grpc-gateway's JSON (proto field names, base64 bytes, 64-bit
    // integers as strings, enums by name), which pbjson's serde impls implement.
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptor_path)?)?
        .preserve_proto_field_names()
        .build(&[
            ".etcdserverpb",
            ".mvccpb",
            ".authpb",
            ".v3lockpb",
            ".v3electionpb",
        ])?;
    Ok(())
}
