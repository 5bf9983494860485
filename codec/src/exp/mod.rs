//! Expectations: the related connections helpers (FTP, SIP, TFTP, H.323, PPTP...) announce.
//! A zero-copy view [`Expect`], a plain-data [`ExpectRepr`], and the request builders in
//! [`request`].

mod entry;
pub mod request;

pub use entry::{Expect, ExpectFlags, ExpectNat, ExpectRepr};
