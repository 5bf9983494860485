//! Programs built on the conntrack crates; each binary lives in `src/bin/`.
