//! A sub-millisecond alarm for the open model's dispatchers.
//!
//! tokio's timer rounds every deadline up to the next whole millisecond, so a timetable
//! dispatched on it starts requests up to a millisecond late. On Linux a timerfd, registered
//! with the dispatcher's own runtime, fires with the kernel's timer precision (about 50 µs of
//! slack) and wakes the thread that waits for it, without a second thread or a cross-thread
//! wake-up. Elsewhere tokio's timer does the job, a millisecond coarser.

use tokio::time::Instant;

pub struct Alarm {
    #[cfg(target_os = "linux")]
    timer: Option<linux::TimerFd>,
}

impl Alarm {
    /// Must be called inside the runtime the alarm is awaited on.
    pub fn new() -> Alarm {
        Alarm {
            // Without a timerfd (none left, a sandbox forbids it), tokio's timer still works.
            #[cfg(target_os = "linux")]
            timer: linux::TimerFd::new().ok(),
        }
    }

    /// Resolves once `at` has come. Cancel-safe: a later call may set another deadline.
    pub async fn wait_until(&mut self, at: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(timer) = &mut self.timer {
            if timer.wait_until(at.into_std()).await.is_ok() {
                return;
            }
            self.timer = None;
        }
        tokio::time::sleep_until(at).await
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::OwnedFd;
    use std::time::Instant;

    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags, Timespec,
    };
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    pub struct TimerFd {
        fd: AsyncFd<OwnedFd>,
        armed: Option<Instant>,
    }

    impl TimerFd {
        pub fn new() -> std::io::Result<TimerFd> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            // SAFETY: an `OwnedFd` is open and stays the same descriptor until it is dropped,
            // which is what `register` asks of its argument.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(|e| e.into_parts().1)?;
            Ok(TimerFd { fd, armed: None })
        }

        pub async fn wait_until(&mut self, at: Instant) -> std::io::Result<()> {
            let now = Instant::now();
            if at <= now {
                return Ok(());
            }
            if self.armed != Some(at) {
                // Relative to now: `Instant` does not expose its clock value. Re-arming also
                // resets the count of an earlier expiry nobody waited for.
                let left = at - now;
                let value = Timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos().max(1) as _,
                };
                let zero = Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                timerfd_settime(
                    self.fd.get_ref(),
                    TimerfdTimerFlags::empty(),
                    &Itimerspec {
                        it_interval: zero,
                        it_value: value,
                    },
                )?;
                self.armed = Some(at);
            }
            loop {
                let mut ready = self.fd.readable().await?;
                let mut expiries = [0u8; 8];
                match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expiries)?)) {
                    Ok(Ok(_)) => {
                        self.armed = None;
                        return Ok(());
                    }
                    Ok(Err(e)) => return Err(e),
                    // Readiness left from an expiry that a re-arm reset: wait on.
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn fires_at_the_deadline_and_not_before() {
        let mut alarm = Alarm::new();
        #[cfg(target_os = "linux")]
        assert!(alarm.timer.is_some());
        for ms in [20, 1] {
            let at = Instant::now() + Duration::from_millis(ms);
            alarm.wait_until(at).await;
            assert!(Instant::now() >= at);
        }
        // A deadline in the past fires at once; so does one replaced before it came.
        alarm
            .wait_until(Instant::now() - Duration::from_millis(1))
            .await;
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            _ = alarm.wait_until(far) => panic!("an hour passed"),
            _ = tokio::task::yield_now() => {}
        }
        let at = Instant::now() + Duration::from_millis(2);
        alarm.wait_until(at).await;
        assert!(Instant::now() >= at);
    }
}
