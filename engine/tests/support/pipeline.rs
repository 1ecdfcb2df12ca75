//! Shared by the pipeline tests: a gateway stand-in that feeds commands through the real
//! `GatewayPort` and releases events only through `DurableOutbound`, as the gateway does.

use std::time::Duration;

use petrel_engine::core::{Command, Engine, EngineConfig, Event};
use petrel_engine::port::{DurableOutbound, GatewayPort, InboundCommand, OutboundEvent};

/// What a gateway loop saw.
#[derive(Debug, Default)]
pub struct Drive {
    /// Events released, in release order.
    pub released: Vec<OutboundEvent>,
    /// Pushes refused because the inbound ring was full.
    pub inbound_refusals: u64,
}

/// Pushes every command (conn = its index) and releases events until the last command's last
/// event came back. Every released event is checked against the durable mark at release time.
/// `sleep` between polls that did nothing (the park strategy of a gateway thread). Run to
/// completion: runs the port's core in the loop, as the gateway thread does.
pub fn drive(port: &GatewayPort, commands: &[Command]) -> Drive {
    let mut out = Drive::default();
    let mut releaser = DurableOutbound::new();
    let mut core = port.core.take();
    let mut next = 0usize;
    let mut completed = 0usize;
    while completed < commands.len() {
        let mut progressed = false;
        while next < commands.len() {
            match port.try_submit(InboundCommand::new(next as u32, commands[next])) {
                Ok(()) => {
                    next += 1;
                    progressed = true;
                }
                Err(_) => {
                    out.inbound_refusals += 1;
                    break;
                }
            }
        }
        if let Some(core) = core.as_mut() {
            progressed |= core.run(&mut || {
                release(port, &mut releaser, &mut out, &mut completed);
            });
        }
        progressed |= release(port, &mut releaser, &mut out, &mut completed);
        if !progressed {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    if let Some(core) = core {
        port.core.put(core);
    }
    out
}

fn release(
    port: &GatewayPort,
    releaser: &mut DurableOutbound,
    out: &mut Drive,
    completed: &mut usize,
) -> bool {
    let mut progressed = false;
    while let Some(event) = releaser.next(port) {
        let durable = port.durable_sequence.load(std::sync::atomic::Ordering::Acquire);
        assert!(
            event.sequence <= durable,
            "event of {} released with durable mark {durable}",
            event.sequence
        );
        if event.last_of_command {
            *completed += 1;
        }
        out.released.push(event);
        progressed = true;
    }
    progressed
}

/// The events a single-threaded engine produces for `commands` numbered from `first_sequence`,
/// grouped per command.
pub fn reference_events(config: &EngineConfig, commands: &[Command], first_sequence: u64) -> Vec<Vec<Event>> {
    let mut engine = Engine::new(config).unwrap();
    commands
        .iter()
        .enumerate()
        .map(|(i, command)| {
            let mut events = Vec::new();
            engine.apply(command, first_sequence + i as u64, 0, &mut events);
            events
        })
        .collect()
}

/// Groups released events per command, checking the tagging: sequences contiguous from
/// `first_sequence`, each command's events together, the last one flagged, the conn echoed.
pub fn group_by_command(released: &[OutboundEvent], first_sequence: u64) -> Vec<Vec<Event>> {
    let mut groups: Vec<Vec<Event>> = Vec::new();
    let mut open = false;
    for event in released {
        if !open {
            assert_eq!(event.sequence, first_sequence + groups.len() as u64, "sequences are contiguous");
            groups.push(Vec::new());
            open = true;
        }
        let index = groups.len() - 1;
        assert_eq!(event.sequence, first_sequence + index as u64, "a command's events stay together");
        assert_eq!(event.conn as usize, index, "conn is echoed");
        groups[index].push(event.event);
        if event.last_of_command {
            open = false;
        }
    }
    assert!(!open, "the last command's last event is flagged");
    groups
}
