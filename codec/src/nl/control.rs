//! Netlink control messages: `NLMSG_ERROR` (errors and ACKs), `NLMSG_DONE`, `NLMSG_NOOP`,
//! `NLMSG_OVERRUN`, and the extended-ack attributes that errors and DONE may carry.

use byteorder::{ByteOrder, NativeEndian};

use crate::nl::{align, errattr, flags, msgtype, Attrs, NlMsg, NlMsgHeader};
use crate::{Error, Result};

/// A control message, read from an [`NlMsg`] whose type is below `NLMSG_MIN_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Control<'a> {
    /// `NLMSG_NOOP`.
    Noop,
    /// `NLMSG_ERROR`: an error, or an acknowledgement when the error code is 0.
    Error(ErrorMsg<'a>),
    /// `NLMSG_DONE`: the end of a dump.
    Done(DoneMsg<'a>),
    /// `NLMSG_OVERRUN`.
    Overrun,
    /// A control type netlink does not define (0, or 5 to 15).
    Unknown(u16),
}

impl<'a> Control<'a> {
    /// Reads `msg` as a control message, or `None` if its type is a protocol type.
    ///
    /// # Errors
    /// A malformed `NLMSG_ERROR` or `NLMSG_DONE` payload.
    pub fn parse(msg: &NlMsg<'a>) -> Result<Option<Self>> {
        if !msg.is_control() {
            return Ok(None);
        }
        Ok(Some(match msg.kind() {
            msgtype::NOOP => Control::Noop,
            msgtype::ERROR => Control::Error(ErrorMsg::parse(msg)?),
            msgtype::DONE => Control::Done(DoneMsg::parse(msg)?),
            msgtype::OVERRUN => Control::Overrun,
            other => Control::Unknown(other),
        }))
    }
}

/// The extended-ack attributes (`NLMSGERR_ATTR_*`) of an error, an ACK or a DONE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExtAck<'a> {
    /// `NLMSGERR_ATTR_MSG`: the kernel's explanation.
    pub msg: Option<&'a str>,
    /// `NLMSGERR_ATTR_OFFS`: offset of the offending attribute in the request message.
    pub offset: Option<u32>,
    /// `NLMSGERR_ATTR_MISS_TYPE`: type of a missing required attribute.
    pub missing_type: Option<u32>,
    /// `NLMSGERR_ATTR_MISS_NEST`: offset of the nest that lacked it.
    pub missing_nest: Option<u32>,
    /// `NLMSGERR_ATTR_COOKIE`: opaque bytes.
    pub cookie: Option<&'a [u8]>,
}

impl<'a> ExtAck<'a> {
    /// Reads the extended-ack attributes in `buf`; unknown ones are skipped.
    ///
    /// # Errors
    /// A malformed attribute, or a known one of the wrong size.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let mut ext = ExtAck::default();
        for attr in Attrs::new(buf) {
            let attr = attr?;
            match attr.kind() {
                errattr::MSG => ext.msg = Some(attr.c_str()?),
                errattr::OFFS => ext.offset = Some(attr.u32_ne()?),
                errattr::MISS_TYPE => ext.missing_type = Some(attr.u32_ne()?),
                errattr::MISS_NEST => ext.missing_nest = Some(attr.u32_ne()?),
                errattr::COOKIE => ext.cookie = Some(attr.payload()),
                _ => {}
            }
        }
        Ok(ext)
    }

    /// Whether no attribute was present.
    pub fn is_empty(&self) -> bool {
        *self == ExtAck::default()
    }
}

/// `NLMSG_ERROR`: an errno (0 for an ACK), the echoed request, and extended-ack attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorMsg<'a> {
    code: i32,
    request: NlMsgHeader,
    request_payload: &'a [u8],
    ext: ExtAck<'a>,
}

impl<'a> ErrorMsg<'a> {
    /// Reads the payload of an `NLMSG_ERROR` message.
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] if `msg` is not `NLMSG_ERROR`; [`Error::Truncated`] if
    /// the payload is shorter than the error code and the echoed header (or than the echoed
    /// request it declares); errors of the extended-ack attributes.
    pub fn parse(msg: &NlMsg<'a>) -> Result<Self> {
        if msg.kind() != msgtype::ERROR {
            return Err(Error::UnexpectedMessage("not NLMSG_ERROR"));
        }
        let p = msg.payload();
        let code = p
            .get(0..4)
            .map(NativeEndian::read_i32)
            .ok_or(Error::Truncated("error code"))?;
        let echoed = p.get(4..).unwrap_or(&[]);
        let request = NlMsgHeader::parse(echoed)?;
        let capped = msg.flags() & flags::CAPPED != 0;
        let echoed_len = if capped {
            NlMsgHeader::LEN
        } else {
            let len =
                usize::try_from(request.len).map_err(|_| Error::Truncated("echoed request"))?;
            if len < NlMsgHeader::LEN {
                return Err(Error::InvalidLength("echoed request (nlmsg_len < 16)"));
            }
            len
        };
        let request_payload = echoed
            .get(NlMsgHeader::LEN..echoed_len)
            .ok_or(Error::Truncated("echoed request"))?;
        let ext = if msg.flags() & flags::ACK_TLVS != 0 {
            let start = align(echoed_len).unwrap_or(usize::MAX);
            ExtAck::parse(echoed.get(start..).unwrap_or(&[]))?
        } else {
            ExtAck::default()
        };
        Ok(ErrorMsg {
            code,
            request,
            request_payload,
            ext,
        })
    }

    /// Whether this is an acknowledgement (error code 0).
    #[inline]
    pub const fn is_ack(&self) -> bool {
        self.code == 0
    }

    /// The raw error code: 0 or a negative errno.
    #[inline]
    pub const fn code(&self) -> i32 {
        self.code
    }

    /// The positive errno (`EEXIST`, `ENOENT`, ...), 0 for an ACK.
    #[inline]
    pub const fn errno(&self) -> i32 {
        self.code.saturating_neg()
    }

    /// The header of the request this answers (its `seq` matches the request's).
    #[inline]
    pub const fn request(&self) -> &NlMsgHeader {
        &self.request
    }

    /// The echoed request payload (empty when the kernel capped the echo).
    #[inline]
    pub const fn request_payload(&self) -> &'a [u8] {
        self.request_payload
    }

    /// The extended-ack attributes.
    #[inline]
    pub const fn ext_ack(&self) -> &ExtAck<'a> {
        &self.ext
    }
}

/// `NLMSG_DONE`: the end of a dump, with the dump's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DoneMsg<'a> {
    code: i32,
    ext: ExtAck<'a>,
}

impl<'a> DoneMsg<'a> {
    /// Reads the payload of an `NLMSG_DONE` message (an empty payload means code 0).
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] if `msg` is not `NLMSG_DONE`; [`Error::Truncated`] if the
    /// payload is 1 to 3 bytes long; errors of the extended-ack attributes.
    pub fn parse(msg: &NlMsg<'a>) -> Result<Self> {
        if msg.kind() != msgtype::DONE {
            return Err(Error::UnexpectedMessage("not NLMSG_DONE"));
        }
        let p = msg.payload();
        if p.is_empty() {
            return Ok(DoneMsg {
                code: 0,
                ext: ExtAck::default(),
            });
        }
        let code = p
            .get(0..4)
            .map(NativeEndian::read_i32)
            .ok_or(Error::Truncated("dump error code"))?;
        let ext = if msg.flags() & flags::ACK_TLVS != 0 {
            ExtAck::parse(p.get(4..).unwrap_or(&[]))?
        } else {
            ExtAck::default()
        };
        Ok(DoneMsg { code, ext })
    }

    /// The raw code: 0 or a negative errno if the dump failed.
    #[inline]
    pub const fn code(&self) -> i32 {
        self.code
    }

    /// The positive errno, 0 when the dump ended well.
    #[inline]
    pub const fn errno(&self) -> i32 {
        self.code.saturating_neg()
    }

    /// The extended-ack attributes.
    #[inline]
    pub const fn ext_ack(&self) -> &ExtAck<'a> {
        &self.ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::Writer;

    fn error_msg(buf: &mut [u8], code: i32, capped: bool, with_msg: bool) -> usize {
        let mut w = Writer::new(buf);
        let mut fl = 0;
        if capped {
            fl |= flags::CAPPED;
        }
        if with_msg {
            fl |= flags::ACK_TLVS;
        }
        w.message(msgtype::ERROR, fl, 9, 0, |w| {
            let mut c = [0u8; 4];
            NativeEndian::write_i32(&mut c, code);
            w.raw(&c)?;
            let req_len = if capped { 16 } else { 24 };
            let mut h = [0u8; 16];
            NlMsgHeader {
                len: 24,
                kind: 0x100,
                flags: 5,
                seq: 9,
                pid: 1234,
            }
            .emit(&mut h)?;
            w.raw(&h)?;
            if req_len == 24 {
                w.raw(&[1, 2, 3, 4, 5, 6, 7, 8])?;
            }
            if with_msg {
                w.attr(errattr::MSG, b"bad attr\0")?;
                let mut o = [0u8; 4];
                NativeEndian::write_u32(&mut o, 20);
                w.attr(errattr::OFFS, &o)?;
            }
            Ok(())
        })
        .unwrap();
        w.len()
    }

    #[test]
    fn ack() {
        let mut buf = [0u8; 128];
        let n = error_msg(&mut buf, 0, false, false);
        let m = NlMsg::new_checked(&buf[..n]).unwrap();
        let Some(Control::Error(e)) = m.control().unwrap() else {
            panic!("not an error")
        };
        assert!(e.is_ack());
        assert_eq!(e.request().seq, 9);
        assert_eq!(e.request_payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(e.ext_ack().is_empty());
    }

    #[test]
    fn error_with_ext_ack_capped_and_not() {
        for capped in [false, true] {
            let mut buf = [0u8; 128];
            let n = error_msg(&mut buf, -22, capped, true);
            let m = NlMsg::new_checked(&buf[..n]).unwrap();
            let e = ErrorMsg::parse(&m).unwrap();
            assert_eq!(e.errno(), 22);
            assert_eq!(e.ext_ack().msg, Some("bad attr"));
            assert_eq!(e.ext_ack().offset, Some(20));
            assert_eq!(e.request_payload().is_empty(), capped);
        }
    }

    #[test]
    fn truncated_error() {
        let mut buf = [0u8; 128];
        let n = error_msg(&mut buf, -2, false, false);
        // Shrink nlmsg_len so that the echoed request no longer fits.
        NativeEndian::write_u32(&mut buf[0..4], 30);
        let m = NlMsg::new_checked(&buf[..n]).unwrap();
        assert!(matches!(m.control(), Err(Error::Truncated(_))));
    }

    #[test]
    fn done_forms() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.message(msgtype::DONE, flags::MULTI, 1, 0, |w| w.raw(&[0, 0, 0, 0]))
            .unwrap();
        let n = w.len();
        let m = NlMsg::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            m.control().unwrap(),
            Some(Control::Done(DoneMsg {
                code: 0,
                ext: ExtAck::default()
            }))
        );

        let mut w = Writer::new(&mut buf);
        w.message(msgtype::DONE, 0, 1, 0, |_| Ok(())).unwrap();
        let n = w.len();
        let m = NlMsg::new_checked(&buf[..n]).unwrap();
        assert!(matches!(m.control().unwrap(), Some(Control::Done(d)) if d.errno() == 0));
    }

    #[test]
    fn protocol_messages_are_not_control() {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        w.message(0x100, 0, 1, 0, |_| Ok(())).unwrap();
        let n = w.len();
        assert_eq!(
            NlMsg::new_checked(&buf[..n]).unwrap().control().unwrap(),
            None
        );
    }
}
