//! Helpers shared by the test binaries that drive whole stacks.

/// A port free for a public listener (below 60000, so that PORT+N stays valid).
pub fn free_port() -> u16 {
    loop {
        let p = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if p < 60000 {
            return p;
        }
    }
}
