//! The commands on expectations: `-L expect`, `-C expect`, `-I expect`, `-D expect`,
//! `-G expect`.

use std::ops::ControlFlow;

use conntrack_codec::ct::Tuple;
use conntrack_codec::exp::request::ExpKey;
use conntrack_codec::exp::ExpectRepr;
use conntrack_codec::fmt::{ExpLine, Output, Style, XML_EXP_FOOTER, XML_EXP_HEADER};

use super::{failed, Ctx};
use crate::kernel::Kernel;
use crate::model::{has_ports, Obj, Tup};
use crate::parse::{out as o, Cmd, Fail};

impl Ctx {
    /// The output options of expectation lines.
    pub(crate) fn exp_output(&self) -> Output {
        let mut out = Output {
            style: if self.g.output_mask & o::XML != 0 {
                Style::Xml
            } else {
                Style::Default
            },
            ..Output::default()
        };
        conntrack_io::clock::set_now(&mut out);
        out
    }

    pub(super) fn exp_list(
        &mut self,
        c: &mut Cmd,
        k: &mut dyn Kernel,
        count_only: bool,
    ) -> Result<(), Fail> {
        let mut out = self.exp_output();
        let tms = self.g.output_mask & o::TMS != 0;
        let mut error = None;
        let res = k.exp_list(c.family, &mut |view| {
            if count_only {
                self.counter += 1;
                return ControlFlow::Continue(());
            }
            let e = match ExpectRepr::try_from(&view) {
                Ok(e) => e,
                Err(err) => {
                    error = Some(Fail::other(format!("Operation failed: {err}")));
                    return ControlFlow::Break(());
                }
            };
            if out.style == Style::Xml && !self.xml_open {
                self.xml_open = true;
                self.term.out.text(XML_EXP_HEADER);
            }
            if tms {
                out.event_time = Some(conntrack_io::clock::now_micros());
                conntrack_io::clock::set_now(&mut out);
            }
            self.term
                .out
                .line(format_args!("{}", ExpLine::new(&e, None, &out)));
            self.counter += 1;
            ControlFlow::Continue(())
        });
        if self.xml_open {
            self.term.out.text(XML_EXP_FOOTER);
            self.term.out.flush();
        }
        if let Some(e) = error {
            return Err(e);
        }
        if count_only {
            self.term.out.line(format_args!("{}", self.counter as i32));
        }
        res.map(drop).map_err(|e| failed(&e, c.command))
    }

    pub(super) fn exp_create(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        let t = &c.tmpl;
        let exp = ExpectRepr {
            family: t.ct.orig.l3.unwrap_or(0),
            master: Some(exp_tuple(&t.ct.orig, &t.ct)),
            tuple: Some(exp_tuple(&t.exptuple.orig, &t.exptuple)),
            mask: Some(exp_tuple(&t.mask.orig, &t.mask)),
            timeout: t.exp_timeout,
            ..ExpectRepr::default()
        };
        k.exp_create(&exp).map_err(|e| failed(&e, c.command))
    }

    pub(super) fn exp_delete(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        let key = ExpKey::tuple(exp_tuple(&c.tmpl.ct.orig, &c.tmpl.ct));
        k.exp_delete(&key).map_err(|e| failed(&e, c.command))
    }

    pub(super) fn exp_get(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        let key = ExpKey::tuple(exp_tuple(&c.tmpl.ct.orig, &c.tmpl.ct));
        let exp = k.exp_get(&key).map_err(|e| failed(&e, c.command))?;
        let out = self.exp_output();
        self.term
            .out
            .line(format_args!("{}", ExpLine::new(&exp, None, &out)));
        self.counter += 1;
        Ok(())
    }
}

/// A tuple as the expectation requests of libnetfilter_conntrack build it: addresses of
/// the family, the protocol number, and the protocol's ports or ICMP fields.
fn exp_tuple(t: &Tup, obj: &Obj) -> Tuple {
    let mut out = Tuple::default();
    let zero = match t.l3 {
        Some(2) => Some(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        Some(10) => Some(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        _ => None,
    };
    if let Some(z) = zero {
        out.src = Some(t.src.and_then(|a| a.ip()).unwrap_or(z));
        out.dst = Some(t.dst.and_then(|a| a.ip()).unwrap_or(z));
    }
    let proto = t.l4.unwrap_or(0);
    out.proto = Some(proto);
    match proto {
        1 => {
            out.icmp_code = Some(obj.icmp_code.unwrap_or(0));
            out.icmp_type = Some(obj.icmp_type.unwrap_or(0));
            out.icmp_id = Some(obj.icmp_id.unwrap_or(0));
        }
        58 => {
            out.icmpv6_code = Some(obj.icmp_code.unwrap_or(0));
            out.icmpv6_type = Some(obj.icmp_type.unwrap_or(0));
            out.icmpv6_id = Some(obj.icmp_id.unwrap_or(0));
        }
        p if has_ports(p) => {
            out.src_port = Some(t.sport.unwrap_or(0));
            out.dst_port = Some(t.dport.unwrap_or(0));
        }
        _ => {}
    }
    out
}
