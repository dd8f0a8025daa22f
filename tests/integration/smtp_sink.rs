//! An SMTP server on 127.0.0.1 that keeps what it accepts, for tests of the mailer. It
//! speaks enough plain SMTP for lettre (no STARTTLS, no AUTH) and can be told to refuse
//! or to hang up. Every read is bounded, so a confused client cannot hang a test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Far above SMTP's 1000 octets, so only a runaway client meets it.
const MAX_LINE: u64 = 64 * 1024;
const MAX_MESSAGE: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct State {
    received: Vec<Raw>,
    connections: usize,
    /// Replies to give instead of 250, each (how many more, code).
    data_faults: Option<(u32, u16)>,
    rcpt_faults: Option<(u32, u16)>,
    drops_after_data: u32,
}

#[derive(Clone)]
struct Raw {
    from: String,
    to: Vec<String>,
    bytes: Vec<u8>,
    acknowledged: bool,
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panicking connection task must not hide what was received from the test.
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stops listening, and drops its connections, when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink");
        let addr = listener.local_addr().expect("the sink's address");
        let shared = Shared::default();
        let task = tokio::spawn(accept(listener, shared.clone()));
        SmtpSink { addr, shared, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What the sink accepted, in order, including messages it hung up on after reading.
    pub fn messages(&self) -> Vec<Received> {
        lock(&self.shared).received.iter().map(Received::parse).collect()
    }

    pub fn connections(&self) -> usize {
        lock(&self.shared).connections
    }

    /// The next `n` messages get `code` as the reply to their data, and are not kept.
    pub fn fail_next(&self, n: u32, code: u16) {
        lock(&self.shared).data_faults = Some((n, code));
    }

    /// The next `n` RCPT TO commands get `code`.
    pub fn fail_rcpt_next(&self, n: u32, code: u16) {
        lock(&self.shared).rcpt_faults = Some((n, code));
    }

    /// The next message is read in full and kept, then the connection is closed with no
    /// reply: the sender cannot know whether it was delivered.
    pub fn drop_after_data_next(&self) {
        lock(&self.shared).drops_after_data += 1;
    }
}

async fn accept(listener: TcpListener, shared: Shared) {
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                lock(&shared).connections += 1;
                let shared = shared.clone();
                connections.spawn(async move {
                    // A broken or timed-out connection just ends, like a real server's.
                    let _ = serve(stream, shared).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn take_fault(slot: &mut Option<(u32, u16)>) -> Option<u16> {
    let (n, code) = slot.as_mut()?;
    let code = *code;
    *n -= 1;
    if *n == 0 {
        *slot = None;
    }
    Some(code)
}

async fn serve(stream: TcpStream, shared: Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    reply(&mut write, "220 sink.test ESMTP ready").await?;
    let (mut from, mut to) = (None::<String>, Vec::<String>::new());
    while let Some(line) = read_line(&mut read).await? {
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        let verb = line.get(..4).unwrap_or(&line).to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => reply(&mut write, "250 sink.test").await?,
            "MAIL" => {
                from = Some(path(&line));
                to.clear();
                reply(&mut write, "250 2.1.0 OK").await?;
            }
            "RCPT" if from.is_none() => reply(&mut write, "503 5.5.1 MAIL first").await?,
            "RCPT" => match rcpt_fault(&shared) {
                Some(code) => reply(&mut write, &format!("{code} sink refuses this recipient")).await?,
                None => {
                    to.push(path(&line));
                    reply(&mut write, "250 2.1.5 OK").await?;
                }
            },
            "DATA" if to.is_empty() => reply(&mut write, "503 5.5.1 RCPT first").await?,
            "DATA" => {
                reply(&mut write, "354 end data with <CR><LF>.<CR><LF>").await?;
                let Some(bytes) = read_data(&mut read).await? else {
                    return reply(&mut write, "552 5.3.4 message too big").await;
                };
                let raw = Raw {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    bytes,
                    acknowledged: true,
                };
                let Some(text) = settle(&shared, raw) else {
                    return Ok(());
                };
                reply(&mut write, &text).await?;
            }
            "RSET" => {
                (from, to) = (None, Vec::new());
                reply(&mut write, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut write, "250 2.0.0 OK").await?,
            "QUIT" => return reply(&mut write, "221 2.0.0 bye").await,
            _ => reply(&mut write, "502 5.5.2 not implemented").await?,
        }
    }
    Ok(())
}

fn rcpt_fault(shared: &Shared) -> Option<u16> {
    take_fault(&mut lock(shared).rcpt_faults)
}

/// Keeps the message (or not) and says what to answer; `None`: hang up instead.
fn settle(shared: &Shared, raw: Raw) -> Option<String> {
    let mut state = lock(shared);
    if state.drops_after_data > 0 {
        state.drops_after_data -= 1;
        state.received.push(Raw {
            acknowledged: false,
            ..raw
        });
        return None;
    }
    Some(match take_fault(&mut state.data_faults) {
        Some(code) => format!("{code} sink refuses this message"),
        None => {
            state.received.push(raw);
            "250 2.0.0 queued".to_owned()
        }
    })
}

/// The address inside `MAIL FROM:<a@b> PARAMS` or `RCPT TO:<a@b>`.
fn path(line: &str) -> String {
    let inner = line.split_once('<').and_then(|(_, rest)| rest.split_once('>'));
    inner.map(|(addr, _)| addr.to_owned()).unwrap_or_default()
}

async fn reply(write: &mut (impl AsyncWrite + Unpin), text: &str) -> std::io::Result<()> {
    let line = format!("{text}\r\n");
    bounded(write.write_all(line.as_bytes())).await
}

/// One line including its CRLF; `None` at end of stream.
async fn read_line<R: AsyncBufReadExt + Unpin>(read: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = bounded((&mut *read).take(MAX_LINE).read_until(b'\n', &mut buf)).await?;
    Ok((n > 0).then_some(buf))
}

/// Up to the lone `.` line, dot-unstuffed; `None` past `MAX_MESSAGE`.
async fn read_data<R: AsyncBufReadExt + Unpin>(read: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    loop {
        let Some(line) = read_line(read).await? else {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        };
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some(message));
        }
        let line = line
            .strip_prefix(b".")
            .filter(|rest| rest.starts_with(b"."))
            .unwrap_or(&line);
        message.extend_from_slice(line);
        if message.len() > MAX_MESSAGE {
            return Ok(None);
        }
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    tokio::time::timeout(IO_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// One accepted message, parsed.
#[derive(Debug, Clone)]
pub struct Received {
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// False for a message the sink hung up on instead of confirming.
    pub acknowledged: bool,
    pub raw: Vec<u8>,
    /// Every part's `type/subtype`, the root first.
    pub content_types: Vec<String>,
    /// As written, with its angle brackets.
    pub message_id: Option<String>,
    /// Decoded from RFC 2047.
    pub subject: Option<String>,
    pub to_name: Option<String>,
    pub to_email: Option<String>,
    pub content_language: Option<String>,
    pub list_unsubscribe: Option<String>,
    pub list_unsubscribe_post: Option<String>,
    /// The decoded bodies of the text/plain and text/html parts, with `\n` line ends.
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Received {
    fn parse(raw: &Raw) -> Received {
        let msg = MessageParser::default()
            .parse(&raw.bytes)
            .expect("the sink received a parsable message");
        let header = |name: &'static str| msg.header_raw(name).map(unfold);
        let part = |subtype: &str| {
            msg.parts.iter().find_map(|p| {
                let ct = p.content_type()?;
                let matches = ct.ctype() == "text" && ct.subtype() == Some(subtype);
                matches.then(|| p.text_contents().unwrap_or_default().replace("\r\n", "\n"))
            })
        };
        let to = msg.to().and_then(|a| a.first());
        Received {
            envelope_from: raw.from.clone(),
            envelope_to: raw.to.clone(),
            acknowledged: raw.acknowledged,
            raw: raw.bytes.clone(),
            content_types: msg
                .parts
                .iter()
                .map(|p| match p.content_type() {
                    Some(ct) => format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()),
                    None => "text/plain".to_owned(),
                })
                .collect(),
            message_id: header("Message-ID"),
            subject: msg.subject().map(str::to_owned),
            to_name: to.and_then(|a| a.name()).map(str::to_owned),
            to_email: to.and_then(|a| a.address()).map(str::to_owned),
            content_language: header("Content-Language"),
            list_unsubscribe: header("List-Unsubscribe"),
            list_unsubscribe_post: header("List-Unsubscribe-Post"),
            text: part("plain"),
            html: part("html"),
        }
    }
}

/// A raw header value on one line, as a reader would see it.
fn unfold(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}
