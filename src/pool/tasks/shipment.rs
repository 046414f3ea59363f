//! A task context in shared memory: encoded once per call, shipped to the workers
//! as a bulk job's arrays are, and named by each of the call's tasks through the
//! reference its payload starts with (`src/task/context.rs` decodes it, once per
//! worker). The segment stays shipped until the shipment is dropped, which the call
//! arranges once nothing can run a task of it any more: a blocking call holds it,
//! an `Imap` keeps it alive, and an `AsyncResult`'s callbacks keep it until its
//! result is decided.

use std::sync::Arc;

use crate::array::SharedArray;
use crate::error::{CodecRole, Result};
use crate::pool::inner::PoolInner;
use crate::task::codec;
use crate::task::context::ContextRef;

/// The encoded context in shared memory, shipped to the workers for as long as a
/// call that uses it runs.
#[derive(Debug)]
pub(crate) struct Shipment {
    inner: Arc<PoolInner>,
    bytes: SharedArray<u8>,
    /// The context's reference, encoded: what each task's payload starts with.
    prefix: Vec<u8>,
}

impl Shipment {
    /// What each of the call's task payloads starts with.
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }
}

impl Drop for Shipment {
    fn drop(&mut self) {
        self.inner
            .shipping
            .unship_after_job(&[self.bytes.segment()]);
    }
}

/// Copies an encoded context into a fresh segment and ships it to the workers.
pub(crate) fn ship(inner: &Arc<PoolInner>, encoded: &[u8]) -> Result<Shipment> {
    // A segment is never empty: a zero-sized context still gets one byte. Contexts
    // vary in size from call to call, so the array cache does not keep theirs.
    let mut bytes = SharedArray::<u8>::zeroed(encoded.len().max(1))?.never_kept();
    bytes[..encoded.len()].copy_from_slice(encoded);
    inner
        .shipping
        .ship_for_job(&[bytes.segment()], &inner.counters)?;
    let reference = ContextRef {
        id: bytes.segment().id(),
        tenant: bytes.segment().tenant(),
        len: encoded.len() as u64,
    };
    let prefix = codec::encode(&reference, CodecRole::Argument)?;
    Ok(Shipment {
        inner: Arc::clone(inner),
        bytes,
        prefix,
    })
}
