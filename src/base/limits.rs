//! Every size bound a member enforces, in one place, with compile-time proofs of how they
//! compose: a request fits a batch's entry, an entry fits a WAL record, and the largest
//! append of entries or a snapshot chunk fits a peer message. A bound that does not compose
//! shows up as an acknowledged write that recovery refuses or a follower can never receive.

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// `--max-request-bytes` default: etcd's 1.5 MiB.
pub const REQUEST_BYTES_DEFAULT: usize = 3 * MIB / 2;
/// The largest `--max-request-bytes` accepted. etcd warns above 10 MiB; 32 MiB leaves room
/// for deployments that raised it, and every bound below is derived from it.
pub const REQUEST_BYTES_CEILING: usize = 32 * MIB;
/// What the gRPC decoder allows beyond `--max-request-bytes` (etcd's `grpcOverheadBytes`),
/// so an oversized request reaches validation and gets etcd's error, not a transport one.
pub const GRPC_OVERHEAD_BYTES: usize = 512 * KIB;
/// A command's encoding beyond its request's bytes (tags, lengths, IDs): generous, since a
/// request's protobuf encoding and the command's bincode differ only in framing.
pub const COMMAND_OVERHEAD_BYTES: usize = 64 * KIB;
/// The largest encoded command one request can become.
pub const COMMAND_BYTES_MAX: usize =
    REQUEST_BYTES_CEILING + GRPC_OVERHEAD_BYTES + COMMAND_OVERHEAD_BYTES;

/// How deep txns may nest in one request. etcd sets no depth (its decoder has no recursion
/// limit; `--max-txn-ops` bounds each level); this bound keeps decoding, validation and apply,
/// which recurse per level, far inside a thread's stack whatever a client sends.
pub const TXN_DEPTH_MAX: usize = 128;

/// The proposer stops adding commands to a batch before its encoding passes this, so a batch
/// of concurrent large puts stays one bounded entry (a batch of one command may be as large
/// as that command).
pub const BATCH_BYTES_MAX: usize = 16 * MIB;
/// Commands packed into one batch at most, whatever their size.
pub const BATCH_COMMANDS_MAX: usize = 512;
/// A raft entry's encoding beyond its command (log ID, entry kind).
pub const ENTRY_OVERHEAD_BYTES: usize = 4 * KIB;
/// The largest encoded raft entry: a full batch, or one command too large to share one.
pub const ENTRY_BYTES_MAX: usize = max(BATCH_BYTES_MAX, COMMAND_BYTES_MAX) + ENTRY_OVERHEAD_BYTES;

/// No WAL record is larger; a length past this on disk is garbage, not a record.
pub const WAL_RECORD_BYTES_MAX: usize = 64 * MIB;

/// Entries in one AppendEntries message at most (openraft's `max_payload_entries`). Entries
/// are whole batches, so a few carry thousands of requests.
pub const APPEND_ENTRIES_MAX: usize = 8;
/// Bytes of one snapshot chunk sent to a follower.
pub const SNAPSHOT_CHUNK_BYTES: usize = MIB;
/// A peer message's encoding beyond its entries or chunk (vote, log IDs, framing).
pub const PEER_MESSAGE_OVERHEAD_BYTES: usize = 64 * KIB;
/// The largest peer message sent or accepted (gRPC encode and decode limit on peer links).
pub const PEER_MESSAGE_BYTES_MAX: usize = 512 * MIB;

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

// A request of the largest allowed size becomes a command that fits an entry.
const _: () = assert!(REQUEST_BYTES_DEFAULT <= REQUEST_BYTES_CEILING);
const _: () = assert!(COMMAND_BYTES_MAX + ENTRY_OVERHEAD_BYTES <= ENTRY_BYTES_MAX);
// A batch closed at its byte cap fits an entry.
const _: () = assert!(BATCH_BYTES_MAX + ENTRY_OVERHEAD_BYTES <= ENTRY_BYTES_MAX);
// Every entry is one WAL record, which recovery must accept.
const _: () = assert!(ENTRY_BYTES_MAX <= WAL_RECORD_BYTES_MAX);
// The largest append (and a snapshot chunk) reaches a follower in one peer message.
const _: () = assert!(
    APPEND_ENTRIES_MAX * ENTRY_BYTES_MAX + PEER_MESSAGE_OVERHEAD_BYTES <= PEER_MESSAGE_BYTES_MAX
);
const _: () = assert!(SNAPSHOT_CHUNK_BYTES + PEER_MESSAGE_OVERHEAD_BYTES <= PEER_MESSAGE_BYTES_MAX);
// Lengths are u32 in WAL records.
const _: () = assert!(WAL_RECORD_BYTES_MAX <= u32::MAX as usize);

/// Limits a member enforces; every one has a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `--max-request-bytes`: largest request a client may send (at most
    /// `REQUEST_BYTES_CEILING`).
    pub request_bytes_max: usize,
    /// `--max-txn-ops`: most operations in one branch of a txn.
    pub txn_operations_max: usize,
    /// `--quota-backend-bytes`: writes that would grow the store past this fail with NOSPACE.
    pub backend_bytes_quota: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_bytes_max: REQUEST_BYTES_DEFAULT,
            txn_operations_max: 128,
            backend_bytes_quota: 2 * 1024 * 1024 * 1024,
        }
    }
}
