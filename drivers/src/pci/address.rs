//! PCI addresses: `domain:bus:device.function`, as sysfs and lspci -D spell them.

use std::fmt;
use std::str::FromStr;

/// A PCI function address ("BDF" plus domain), e.g. `0000:01:10.0`.
///
/// Parsed from the long form `DDDD:BB:dd.f` or the short form `BB:dd.f`
/// (domain 0), hex digits in either case; always displayed in the long,
/// lower-case form sysfs uses (`/sys/bus/pci/devices/0000:01:10.0`).
/// Domains above 0xffff exist (Intel VMD uses 0x10000 and up), so the domain
/// is 32 bits and displays with at least 4 digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    domain: u32,
    bus: u8,
    device: u8,
    function: u8,
}

/// Why a string is not a PCI address. Quotes the input and says what form is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid PCI address {input:?}: {why}; expected \"DDDD:BB:dd.f\" \
     (e.g. \"0000:01:10.0\", as `lspci -D` prints it) or \"BB:dd.f\""
)]
pub struct PciAddressError {
    /// The string as given.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl PciAddress {
    /// Highest device number on a bus (5 bits).
    pub const MAX_DEVICE: u8 = 0x1f;
    /// Highest function number of a device (3 bits).
    pub const MAX_FUNCTION: u8 = 7;

    /// Builds an address, or `None` when the device or function number is
    /// out of range.
    pub fn new(domain: u32, bus: u8, device: u8, function: u8) -> Option<PciAddress> {
        (device <= Self::MAX_DEVICE && function <= Self::MAX_FUNCTION).then_some(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }

    /// The PCI domain (segment).
    pub fn domain(&self) -> u32 {
        self.domain
    }

    /// The bus number.
    pub fn bus(&self) -> u8 {
        self.bus
    }

    /// The device (slot) number, 0..=31.
    pub fn device(&self) -> u8 {
        self.device
    }

    /// The function number, 0..=7.
    pub fn function(&self) -> u8 {
        self.function
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

fn hex_field<T: TryFrom<u32>>(
    part: &str,
    max_digits: usize,
    input: &str,
    why: &'static str,
) -> Result<T, PciAddressError> {
    let bad = || PciAddressError {
        input: input.to_string(),
        why,
    };
    if part.is_empty() || part.len() > max_digits || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let value = u32::from_str_radix(part, 16).map_err(|_| bad())?;
    T::try_from(value).map_err(|_| bad())
}

impl FromStr for PciAddress {
    type Err = PciAddressError;

    fn from_str(s: &str) -> Result<PciAddress, PciAddressError> {
        let input = s.trim();
        let err = |why| PciAddressError {
            input: s.to_string(),
            why,
        };
        let (head, function) = input
            .rsplit_once('.')
            .ok_or_else(|| err("no \".function\" part"))?;
        let parts: Vec<&str> = head.split(':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [bus, device] => (0, *bus, *device),
            [domain, bus, device] => (
                hex_field::<u32>(domain, 8, s, "the domain must be 1 to 8 hex digits")?,
                *bus,
                *device,
            ),
            _ => {
                return Err(err(
                    "expected two or three ':'-separated fields before the '.'",
                ))
            }
        };
        let bus = hex_field::<u8>(bus, 2, s, "the bus must be 1 or 2 hex digits")?;
        let device = hex_field::<u8>(device, 2, s, "the device must be a hex number 00 to 1f")?;
        let function = hex_field::<u8>(function, 1, s, "the function must be a digit 0 to 7")?;
        if device > Self::MAX_DEVICE {
            return Err(err("the device must be a hex number 00 to 1f"));
        }
        if function > Self::MAX_FUNCTION {
            return Err(err("the function must be a digit 0 to 7"));
        }
        Ok(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_long_and_short_forms() {
        let long: PciAddress = "0000:01:10.0".parse().expect("long form");
        assert_eq!(
            (long.domain(), long.bus(), long.device(), long.function()),
            (0, 1, 0x10, 0)
        );
        let short: PciAddress = "01:10.0".parse().expect("short form");
        assert_eq!(long, short);
        assert_eq!(short.to_string(), "0000:01:10.0");
        let upper: PciAddress = "0000:AF:1F.7".parse().expect("upper case");
        assert_eq!(upper.to_string(), "0000:af:1f.7");
        let vmd: PciAddress = "10000:e1:00.3".parse().expect("VMD domain");
        assert_eq!(vmd.domain(), 0x10000);
        assert_eq!(vmd.to_string(), "10000:e1:00.3");
        assert_eq!(
            " 0000:03:00.1\n".parse::<PciAddress>().ok(),
            PciAddress::new(0, 3, 0, 1)
        );
    }

    #[test]
    fn rejects_bad_addresses_with_the_reason() {
        for bad in [
            "",
            "0000:01:10",
            "01.10.0",
            "0000:01:20.0",
            "0000:01:10.8",
            "0000:001:10.0",
            "0000:0g:10.0",
            "x:0000:01:10.0",
            "0000:01:10.0.1",
            "0000:01:10.",
            "-1:01:10.0",
            "123456789:01:10.0",
        ] {
            let err = bad.parse::<PciAddress>().expect_err(bad);
            let message = err.to_string();
            assert!(message.contains(&format!("{bad:?}")), "{message}");
            assert!(message.contains("0000:01:10.0"), "{message}");
        }
        let err = "0000:01:20.0"
            .parse::<PciAddress>()
            .expect_err("device 0x20");
        assert!(err.to_string().contains("00 to 1f"), "{err}");
        assert_eq!(PciAddress::new(0, 0, 32, 0), None);
        assert_eq!(PciAddress::new(0, 0, 0, 8), None);
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(
            domain in any::<u32>(), bus in any::<u8>(), device in 0u8..=31, function in 0u8..=7,
        ) {
            let address = PciAddress::new(domain, bus, device, function).expect("in range");
            let text = address.to_string();
            prop_assert_eq!(text.parse::<PciAddress>(), Ok(address));
            if domain == 0 {
                prop_assert_eq!(text[5..].parse::<PciAddress>(), Ok(address));
            }
        }
    }
}
