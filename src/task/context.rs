//! Task contexts (Python's `functools.partial`): a value every task of one call
//! receives by reference, sent to each worker once per call rather than once per
//! task.
//!
//! The parent serializes the context once into a shared-memory segment and ships
//! the segment to the workers as it ships a bulk job's arrays (a descriptor per
//! worker, mapped, never copied). Each task's arguments carry a small
//! [`ContextRef`]. In the worker, [`with`] decodes the context the first time a
//! task names it and keeps the decoded value for the call's later tasks; a worker
//! keeps the two most recent contexts, so an old call's context is freed when a
//! third call with a context reaches it.
//!
//! The worker gives this module access to its mapped segments only while it runs a
//! task ([`scope`]): the trampoline of a context task runs inside that scope.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Which context a task uses: the segment holding its encoded bytes. (Public only
/// as `TaskEnv::Ref` of `Context<C>`, a hidden part of that trait; its fields are
/// the crate's.)
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextRef {
    /// The segment's id: which mapping holds the bytes.
    pub(crate) id: u64,
    /// The segment's tenant (`Segment::tenant`): which contents. A segment's id
    /// outlives its contents when the array cache reuses it, so decoded contexts
    /// are keyed by both.
    pub(crate) tenant: u64,
    /// Bytes of the encoded context at the start of the segment's data.
    pub(crate) len: u64,
}

/// Finds the data of a mapped segment: its address and length.
pub(crate) type Resolver<'a> = dyn FnMut(u64) -> Option<(*const u8, usize)> + 'a;

/// What a decoded context is kept under: its segment's id and tenant.
type ContextKey = (u64, u64);

/// Decoded contexts a worker keeps.
const KEPT: usize = 2;

thread_local! {
    /// The resolver of the task running on this thread, while [`scope`] runs.
    static RESOLVER: Cell<Option<NonNull<Resolver<'static>>>> = const { Cell::new(None) };
    /// Decoded contexts, most recent last.
    static DECODED: RefCell<Vec<(ContextKey, Rc<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `body` (a task's trampoline) with `resolver` available to [`with`].
pub(crate) fn scope<R>(resolver: &mut Resolver<'_>, body: impl FnOnce() -> R) -> R {
    struct Restore(Option<NonNull<Resolver<'static>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            RESOLVER.with(|r| r.set(self.0));
        }
    }
    let ptr = NonNull::from(resolver);
    // SAFETY: only the lifetime changes. The pointer is stored for the duration of
    // this call alone (`Restore` puts the previous value back on return or unwind),
    // during which `resolver` is borrowed mutably by us and so outlives every use.
    let ptr: NonNull<Resolver<'static>> = unsafe { std::mem::transmute(ptr) };
    let _restore = Restore(RESOLVER.with(|r| r.replace(Some(ptr))));
    body()
}

/// Calls `f` with the decoded context `r`, decoding it if this worker has not yet.
///
/// # Panics
/// If the context cannot be found (the call that sent it is over: its tasks were
/// abandoned) or decoded; the task then fails as any panicking task does, with an
/// error that names it. A context that cannot be decoded is also recorded
/// (`task::record_context_failure`), so the call fails with `Error::Codec` naming
/// the context's type, as an argument that cannot be decoded would.
pub(crate) fn with<C: DeserializeOwned + 'static, T>(r: ContextRef, f: impl FnOnce(&C) -> T) -> T {
    let cached = DECODED.with(|d| {
        d.borrow()
            .iter()
            .find(|(key, _)| *key == (r.id, r.tenant))
            .map(|(_, v)| Rc::clone(v))
    });
    let value = match cached {
        Some(v) => v,
        None => {
            let decoded: Rc<dyn Any> = Rc::new(decode::<C>(r));
            DECODED.with(|d| {
                let mut d = d.borrow_mut();
                if d.len() >= KEPT {
                    d.remove(0);
                }
                d.push(((r.id, r.tenant), Rc::clone(&decoded)));
            });
            decoded
        }
    };
    let context = value.downcast_ref::<C>().unwrap_or_else(|| {
        panic!(
            "the task context is not a {}: a different type was sent",
            std::any::type_name::<C>()
        )
    });
    f(context)
}

fn decode<C: DeserializeOwned>(r: ContextRef) -> C {
    let resolver = RESOLVER
        .with(|c| c.get())
        .expect("a context task ran outside a worker's task scope");
    // SAFETY: `scope` stored this pointer for the duration of the running task, on
    // this thread, and we are inside that task; no other reference to the resolver
    // is live meanwhile (the worker called `scope` and waits for it).
    let resolve = unsafe { &mut *resolver.as_ptr() };
    let (ptr, available) = resolve(r.id).unwrap_or_else(|| {
        panic!(
            "the task context (segment {}) is no longer available: its call ended",
            r.id
        )
    });
    assert!(
        r.len as usize <= available,
        "the task context's segment holds {available} bytes, not {}",
        r.len
    );
    // SAFETY: the resolver returned the address of a live mapping of `available`
    // bytes, which stays mapped during the task (the worker unmaps dead segments only
    // between records); the parent wrote the encoded context before shipping it and
    // never writes it again.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, r.len as usize) };
    super::codec::decode(bytes, crate::error::CodecRole::Argument).unwrap_or_else(|e| {
        super::codec::record_context_failure(e.clone());
        panic!("decoding the task context: {e}")
    })
}
