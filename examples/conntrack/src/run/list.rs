//! `-L` (the table, `dying`, `unconfirmed`) and `-G`.

use std::ops::ControlFlow;

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::fmt::{Origin, XML_FOOTER};

use super::{build_failed, failed, Ctx};
use crate::filter::{self, NetFilter, Push};
use crate::kernel::{Kernel, ListKind};
use crate::model::Obj;
use crate::parse::{opt, Cmd, Fail, Table};

impl Ctx {
    pub(super) fn list(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        let nf = match c.table {
            Table::Dying | Table::Unconfirmed => NetFilter::default(),
            _ => {
                if c.options & opt::COMPARISON != 0 && c.options & opt::ZERO != 0 {
                    return Err(Fail::param("Can't use -z with filtering parameters"));
                }
                filter::filter_init(c)?
            }
        };
        let out = self.output(true);
        let check = filter::needs_filter(c, &self.cur);
        let cur = self.cur.clone();
        let kf = filter::kernel_filter(c, Push::List);
        let mut error = None;
        let c: &Cmd = c;
        let kind = match c.table {
            Table::Dying => ListKind::Dying,
            Table::Unconfirmed => ListKind::Unconfirmed,
            _ if c.options & opt::ZERO != 0 => ListKind::TableZero,
            _ => ListKind::Table,
        };
        let res = k.list(kind, &kf, &mut |view| {
            let e = match ConntrackRepr::try_from(&view) {
                Ok(e) => e,
                Err(err) => {
                    error = Some(Fail::other(format!("Operation failed: {err}")));
                    return ControlFlow::Break(());
                }
            };
            if check && filter::nfct_filter(c, &nf, &Obj::from_entry(&e), &cur) {
                return ControlFlow::Continue(());
            }
            self.print(&e, Origin::Dump, &out, true);
            self.counter += 1;
            ControlFlow::Continue(())
        });
        if self.xml_open {
            self.term.out.text(XML_FOOTER);
            self.term.out.flush();
        }
        if let Some(e) = error {
            return Err(e);
        }
        let summary = res.map_err(|e| failed(&e, c.command))?;
        if summary.interrupted {
            return Err(build_failed(nix::libc::EINTR, c.command));
        }
        Ok(())
    }

    pub(super) fn get(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        let mut req = c
            .tmpl
            .ct
            .build(self.g.errno)
            .map_err(|e| build_failed(e, c.command))?;
        req.family = c.family;
        let e = k.get(&req).map_err(|e| failed(&e, c.command))?;
        let cur = self.cur.clone();
        if filter::nfct_filter(c, &NetFilter::default(), &Obj::from_entry(&e), &cur) {
            return Ok(());
        }
        let out = self.output(true);
        self.print(&e, Origin::Dump, &out, true);
        self.counter += 1;
        Ok(())
    }
}
