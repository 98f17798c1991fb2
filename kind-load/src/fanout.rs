//! One byte stream, many consumers: every chunk goes to every live consumer through a
//! bounded channel. Chunks are shared (reference-counted), so memory stays near DEPTH chunks
//! (16 MiB) whatever the image size, and the slowest consumer sets the pace (backpressure
//! reaches the source).
//! A consumer that goes away (its command failed) is dropped; the others carry on.

use crate::exec::{secs, Limits, Piece, StdinItem};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

/// Chunks buffered per consumer: enough that a node pausing (a commit's fsync) does not
/// stall the others at once (measured: 64 loads 3-4 % faster than 16).
pub const DEPTH: usize = 64;

/// What the source delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fanned {
    pub bytes: u64,
    /// The source's error, if it broke off (consumers were told).
    pub source_error: Option<String>,
}

/// Makes `n` consumer channels.
pub fn channels(n: usize) -> (Vec<mpsc::Sender<StdinItem>>, Vec<mpsc::Receiver<StdinItem>>) {
    (0..n).map(|_| mpsc::channel(DEPTH)).unzip()
}

/// Copies `source` into every sender until the source ends, or every consumer is gone.
/// Dropping the senders at the end gives the consumers their EOF. A source that sends
/// nothing for `lim.io`, or is still going at `lim.until`, breaks off with that reason.
pub async fn fan_out<S>(source: S, sinks: Vec<mpsc::Sender<StdinItem>>, lim: &Limits) -> Fanned
where
    S: Stream<Item = Result<Piece, String>>,
{
    let mut live: Vec<Option<mpsc::Sender<StdinItem>>> = sinks.into_iter().map(Some).collect();
    let mut out = Fanned::default();
    let mut source = std::pin::pin!(source);
    loop {
        let next = async {
            match lim.io {
                Some(io) => tokio::time::timeout(io, source.next())
                    .await
                    .unwrap_or_else(|_| {
                        Some(Err(format!(
                            "the image source sent nothing for {} (--io-timeout)",
                            secs(io)
                        )))
                    }),
                None => source.next().await,
            }
        };
        let item = match lim.until {
            Some(u) => tokio::time::timeout_at(u, next).await.unwrap_or_else(|_| {
                Some(Err(format!(
                    "timed out: the load's time limit ({}) ran out while reading the image",
                    lim.until_text
                )))
            }),
            None => next.await,
        };
        let Some(item) = item else {
            break;
        };
        match item {
            Ok(piece) => {
                if piece.bytes.is_empty() {
                    continue;
                }
                out.bytes += piece.bytes.len() as u64;
                for slot in live.iter_mut() {
                    if let Some(tx) = slot {
                        if tx.send(Ok(piece.clone())).await.is_err() {
                            *slot = None;
                        }
                    }
                }
                if live.iter().all(Option::is_none) {
                    break;
                }
            }
            Err(e) => {
                for tx in live.iter().flatten() {
                    let _ = tx.send(Err(e.clone())).await;
                }
                out.source_error = Some(e);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::stream;
    use std::time::Duration;

    fn chunks(n: usize, size: usize) -> impl Stream<Item = Result<Piece, String>> {
        stream::iter((0..n).map(move |i| Ok(Bytes::from(vec![i as u8; size]).into())))
    }

    #[tokio::test]
    async fn every_consumer_gets_every_byte_and_the_slowest_sets_the_pace() {
        let (tx, rxs) = channels(3);
        let consumers: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, mut rx)| {
                tokio::spawn(async move {
                    let mut got = 0u64;
                    let mut max_queued = 0;
                    while let Some(Ok(c)) = rx.recv().await {
                        got += c.bytes.len() as u64;
                        max_queued = max_queued.max(rx.len());
                        if i == 2 {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                    (got, max_queued)
                })
            })
            .collect();
        let f = fan_out(chunks(200, 1000), tx, &Limits::default()).await;
        assert_eq!(f.bytes, 200_000);
        for c in consumers {
            let (got, max_queued) = c.await.unwrap();
            assert_eq!(got, 200_000);
            assert!(max_queued <= DEPTH);
        }
    }

    #[tokio::test]
    async fn a_consumer_that_leaves_does_not_stop_the_others() {
        let (tx, mut rxs) = channels(2);
        let quitter = rxs.pop().unwrap();
        drop(quitter);
        let mut rx = rxs.pop().unwrap();
        let reader = tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(Ok(c)) = rx.recv().await {
                n += c.bytes.len() as u64;
            }
            n
        });
        let f = fan_out(chunks(100, 10), tx, &Limits::default()).await;
        assert_eq!(f.bytes, 1000);
        assert_eq!(reader.await.unwrap(), 1000);
    }

    #[tokio::test]
    async fn a_source_error_reaches_every_consumer() {
        let (tx, rxs) = channels(2);
        let src = stream::iter(vec![
            Ok(Bytes::from_static(b"abc").into()),
            Err("boom".to_string()),
        ]);
        let readers: Vec<_> = rxs
            .into_iter()
            .map(|mut rx| {
                tokio::spawn(async move {
                    let mut last = None;
                    while let Some(item) = rx.recv().await {
                        last = Some(item);
                    }
                    last
                })
            })
            .collect();
        let f = fan_out(src, tx, &Limits::default()).await;
        assert_eq!(f.source_error.as_deref(), Some("boom"));
        for r in readers {
            assert_eq!(r.await.unwrap(), Some(Err("boom".to_string())));
        }
    }
}
