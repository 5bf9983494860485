//! A live table with something of every kind, shared by the tests that compare listings
//! with conntrack-tools: nftables rules (an FTP helper, the label extension, DNAT and SNAT)
//! and traffic on `lo` that goes through them.

/// The FTP helper, labels by rule (so that the label extension exists), and NAT.
pub const RULES: &str = r#"
table inet t {
    ct helper ftp-std {
        type "ftp" protocol tcp
    }
    chain out {
        type filter hook output priority 0; policy accept;
        ct mark 0xdeadbeef ct label set 1
        tcp dport 21 ct helper set "ftp-std"
        ct state new accept
    }
}
table ip nat {
    chain out {
        type nat hook output priority -100; policy accept;
        tcp dport 9999 dnat to 127.0.0.1:8080
    }
    chain post {
        type nat hook postrouting priority 100; policy accept;
        udp dport 7777 snat to 127.0.0.5:4000
    }
}
"#;

/// Real traffic on lo: TCP through the DNAT rule, FTP exchanges (IPv4 PASV, IPv6 EPSV)
/// that make the helper create expectations, UDP through the SNAT rule and over IPv6.
pub const TRAFFIC: &str = r#"
import socket, threading
def ftp(family, addr, answer):
    srv = socket.socket(family); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, 21)); srv.listen(1)
    def serve():
        c, _ = srv.accept(); c.sendall(b"220 ready\r\n"); c.recv(100)
        c.sendall(answer); c.recv(100); c.close()
    t = threading.Thread(target=serve); t.start()
    f = socket.create_connection((addr, 21)); f.recv(100); f.sendall(b"PASV\r\n")
    f.recv(100); f.sendall(b"QUIT\r\n"); t.join(); f.close()
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 8080)); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(c.recv(100)); c.close()
t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(("127.0.0.1", 9999)); cl.sendall(b"hello"); cl.recv(100); cl.close()
t.join()
ftp(socket.AF_INET, "127.0.0.1", b"227 Entering Passive Mode (127,0,0,1,195,80)\r\n")
ftp(socket.AF_INET6, "::1", b"229 Entering Extended Passive Mode (|||50123|)\r\n")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"x", ("127.0.0.1", 7777))
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u6.sendto(b"y", ("::1", 5353))
"#;
