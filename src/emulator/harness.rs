//! The emulator in-process on `127.0.0.1`, on a port the system picks: the
//! one way the demo, the integration tests and the benches start it.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use sechub_triage::emulator::{EmulatorConfig, LocalEmulator, SyntheticSpec};
//!
//! let emulator = LocalEmulator::start(EmulatorConfig::unthrottled()).await?;
//! let keys = emulator.state().seed_synthetic(&SyntheticSpec::new(100, 1));
//! let sdk = emulator.sdk_config("AKIDEXAMPLE", "example-secret").await;
//! // ... point a client at `emulator.url()`, inspect `emulator.state()`
//! // (or the admin API under `emulator.admin_url()`) ...
//! emulator.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! The random seed behind injected faults and jitter is
//! [`EmulatorConfig::random_seed`]; findings are seeded through
//! [`LocalEmulator::state`] (synthetic ones, a seed file, or single
//! documents), before or after the start.

use std::io;
use std::net::SocketAddr;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{EmulatorConfig, EmulatorState, serve};

/// An emulator serving on `127.0.0.1` until [`LocalEmulator::shutdown`] or
/// drop. It runs on the tokio runtime it was started on.
#[derive(Debug)]
pub struct LocalEmulator {
    addr: SocketAddr,
    state: EmulatorState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl LocalEmulator {
    /// Starts a fresh emulator with `config` on the current tokio runtime.
    pub async fn start(config: EmulatorConfig) -> io::Result<LocalEmulator> {
        LocalEmulator::start_with_state(EmulatorState::new(config)).await
    }

    /// Serves an existing state (already seeded, say) on the current tokio
    /// runtime.
    pub async fn start_with_state(state: EmulatorState) -> io::Result<LocalEmulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Ok(LocalEmulator {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// [`LocalEmulator::start_with_state`] for callers outside the runtime
    /// (a synchronous test or bench that owns a runtime for the emulator):
    /// the server runs on `runtime` until shut down or dropped.
    pub fn start_on(
        runtime: &tokio::runtime::Handle,
        state: EmulatorState,
    ) -> io::Result<LocalEmulator> {
        runtime.block_on(LocalEmulator::start_with_state(state))
    }

    /// The address it listens on (`127.0.0.1` and the port it was given).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL to give a client: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The emulator's state: seed findings, read counters and stored
    /// findings, change its configuration while it runs.
    pub fn state(&self) -> &EmulatorState {
        &self.state
    }

    /// An SDK configuration that reaches this emulator: Region `us-east-1`,
    /// static credentials (which exist only here; the emulator reads the
    /// access key, never checks the signature), the endpoint URL set, and
    /// nothing read from the environment or `~/.aws`.
    pub async fn sdk_config(&self, access_key: &str, secret_key: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                access_key,
                secret_key,
                None,
                None,
                "sechub-triage-local-emulator",
            ))
            .endpoint_url(self.url())
            .load()
            .await
    }

    /// Stops accepting, lets the requests in progress finish, and returns
    /// the server's result.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for LocalEmulator {
    /// Tells the server to stop (without waiting for it).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_on_loopback_until_shut_down() {
        let emu = LocalEmulator::start(EmulatorConfig::unthrottled())
            .await
            .unwrap();
        assert!(emu.addr().ip().is_loopback());
        assert_ne!(emu.addr().port(), 0);
        assert_eq!(emu.url(), format!("http://127.0.0.1:{}", emu.addr().port()));
        // The port answers while it runs ...
        let conn = tokio::net::TcpStream::connect(emu.addr()).await;
        assert!(conn.is_ok());
        drop(conn);
        let addr = emu.addr();
        emu.shutdown().await.unwrap();
        // ... and is closed once it has shut down.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
