//! Resources, data sources and ephemeral resources, one file each.
