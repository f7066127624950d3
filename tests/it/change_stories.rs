//! Changes a user makes to a running quickstart cluster touch only what
//! changed (issue 11 §1 and §5), with real Terraform against the embedded
//! lab: one more tag on every VM, more memory for the control planes, the
//! ISO of a new Talos patch release, and removing one node.
//!
//! For each: the saved plan's resource changes are exactly the expected
//! ones (no `proxtalos_machine_configuration_apply` replaced: each node's
//! address is known at plan), the apply sends no Talos node a Reset or a
//! configuration, and the re-plan is empty. The same runs with the
//! `on_destroy { reset = true ... }` that the docs show for control
//! planes, where a replacement would have reset every node; and where an
//! address really is unknown at plan (the guest agent turned on), that
//! plan is refused on `node` instead of resetting the nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use crate::support::real_lab::{self, Target};
use crate::support::terraform::{self, Workspace};
use proxtalos::lab::Lab;

/// A quickstart applied in its own embedded lab.
struct Story {
    rt: tokio::runtime::Runtime,
    lab: Option<Lab>,
    ws: Workspace,
    target: Target,
    main_tf: String,
    tfvars: String,
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

impl Story {
    /// Starts a lab on 127.`net`.0.0/16 and applies examples/quickstart,
    /// with `on_destroy` reset on every node when `reset`.
    fn start(net: u8, reset: bool) -> Story {
        let base = format!("127.{net}.{}", 30 + std::process::id() % 50);
        let (rt, lab, target) = real_lab::embedded(&base);
        let provider = terraform::build_provider("bin", "terraform-provider-proxtalos");
        let tfb = real_lab::quickstart_terraform();
        let mut ws = Workspace::new(&tfb, "registry.terraform.io/proxtalos/proxtalos", &provider);
        ws.env("TF_VAR_proxmox_api_token", &target.api_token);
        let examples = terraform::repo_root().join("examples/quickstart");
        for f in ["variables.tf", "outputs.tf"] {
            std::fs::copy(examples.join(f), ws.work().join(f)).unwrap();
        }
        let mut main_tf = std::fs::read_to_string(examples.join("main.tf")).unwrap();
        if reset {
            let anchor = "  node                  = proxtalos_vm.node[each.key].ipv4_addresses[0]\n";
            assert!(main_tf.contains(anchor), "the quickstart's apply resource changed; update this test");
            main_tf = main_tf.replace(
                anchor,
                &format!(
                    "{anchor}  on_destroy {{\n    reset    = true\n    graceful = false\n    reboot   = true\n  }}\n"
                ),
            );
        }
        let tfvars = target.tfvars();
        let story = Story { rt, lab: Some(lab), ws, target, main_tf, tfvars };
        story.write();
        story.ws.init();
        let out = story.tf(&["apply", "-auto-approve", "-no-color"]);
        assert!(out.contains("Apply complete! Resources: 14 added"), "{out}");
        story
    }

    fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("lab running")
    }

    fn write(&self) {
        std::fs::write(self.ws.work().join("main.tf"), &self.main_tf).unwrap();
        std::fs::write(self.ws.work().join("terraform.tfvars"), &self.tfvars).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        self.ws.run(args)
    }

    fn tf(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let t = text(&out);
        assert!(out.status.success(), "terraform {} failed:\n{t}", args.join(" "));
        t
    }

    /// Plans the current files into `tfplan` and returns every resource
    /// change that is not a no-op or a read, as (address, actions).
    fn planned_changes(&self) -> Vec<(String, String)> {
        self.tf(&["plan", "-no-color", "-out=tfplan"]);
        let json = self.tf(&["show", "-json", "-no-color", "tfplan"]);
        let start = json.find('{').unwrap_or(0);
        let plan: serde_json::Value = serde_json::from_str(&json[start..]).unwrap();
        let mut out: Vec<(String, String)> = plan["resource_changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["mode"] == "managed")
            .map(|c| {
                let actions: Vec<&str> =
                    c["change"]["actions"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
                (c["address"].as_str().unwrap().to_string(), actions.join(","))
            })
            .filter(|(_, a)| a != "no-op")
            .collect();
        out.sort();
        out
    }

    /// Applies the saved plan; the Talos nodes must get no Reset and no
    /// configuration while it runs. Then the re-plan must be empty.
    fn apply_touching_no_node(&self) -> String {
        self.lab().sim().reset_calls();
        let out = self.tf(&["apply", "-no-color", "tfplan"]);
        let calls = self.lab().sim().calls();
        for m in ["machine.MachineService/Reset", "machine.MachineService/ApplyConfiguration"] {
            assert_eq!(calls.get(m), None, "{m} during an apply that changes only VMs: {calls:?}\n{out}");
        }
        self.replan_empty();
        out
    }

    fn replan_empty(&self) {
        let out = self.run(&["plan", "-no-color", "-detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "the re-plan is not empty:\n{}", text(&out));
    }

    fn vm_updates(&self, keys: &[&str]) -> Vec<(String, String)> {
        keys.iter().map(|k| (format!("proxtalos_vm.node[\"{k}\"]"), "update".to_string())).collect()
    }

    /// One more tag on every VM.
    fn add_a_tag(&mut self) {
        let old = "tags        = [\"talos\", var.cluster_name, each.value.type]";
        assert!(self.main_tf.contains(old), "the quickstart's tags changed; update this test");
        self.main_tf =
            self.main_tf.replace(old, "tags        = [\"talos\", var.cluster_name, each.value.type, \"blue\"]");
        self.write();
        let all = ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2"];
        assert_eq!(self.planned_changes(), self.vm_updates(&all), "a tag changes the VMs only");
        self.apply_touching_no_node();
    }

    /// More memory for the control planes (pending until their reboot).
    fn raise_control_plane_memory(&mut self) {
        self.tfvars.push_str("control_plane = { cores = 2, memory = 6144, disk_gb = 20 }\n");
        self.write();
        assert_eq!(self.planned_changes(), self.vm_updates(&["cp-1", "cp-2", "cp-3"]), "memory: those VMs only");
        let out = self.apply_touching_no_node();
        assert!(out.contains("Changes pending until the VM reboots"), "{out}");
    }

    /// The ISO of the next Talos patch release: a new image, the VMs'
    /// cdrom updated in place, the Talos objects untouched (same contract).
    fn new_patch_release_iso(&mut self) {
        self.tfvars.push_str("talos_version = \"v1.13.10\"\n");
        self.write();
        let mut want = vec![("proxtalos_image.talos".to_string(), "delete,create".to_string())];
        want.extend(self.vm_updates(&["cp-1", "cp-2", "cp-3", "worker-1", "worker-2"]));
        assert_eq!(self.planned_changes(), want, "a new ISO: the image and the VMs' cdrom");
        self.apply_touching_no_node();
    }

    /// Removes cp-3: only its VM and its apply resource go; worker-1 keeps
    /// its address (§5: addresses do not follow positions).
    fn remove_cp3(&mut self, reset: bool) {
        self.tfvars.push_str(
            "nodes = {\n  \"cp-1\" = { type = \"controlplane\", host = 0 }\n  \"cp-2\" = { type = \"controlplane\", host = 1 }\n  \
             \"worker-1\" = { type = \"worker\", host = 3 }\n  \"worker-2\" = { type = \"worker\", host = 4 }\n}\n",
        );
        self.write();
        let want = vec![
            ("proxtalos_machine_configuration_apply.node[\"cp-3\"]".to_string(), "delete".to_string()),
            ("proxtalos_vm.node[\"cp-3\"]".to_string(), "delete".to_string()),
        ];
        assert_eq!(self.planned_changes(), want, "removing cp-3 touches cp-3 only");
        self.lab().sim().reset_calls();
        let out = self.tf(&["apply", "-no-color", "tfplan"]);
        let calls = self.lab().sim().calls();
        let resets = calls.get("machine.MachineService/Reset").copied().unwrap_or(0);
        assert_eq!(resets, u64::from(reset), "only cp-3 is reset, and only with on_destroy: {calls:?}\n{out}");
        assert_eq!(calls.get("machine.MachineService/ApplyConfiguration"), None, "{calls:?}");
        let cp3 = self.target.node_addresses()[2].clone();
        let addrs: Vec<String> = self.lab().nodes().iter().map(|n| n.address.to_string()).collect();
        assert!(!addrs.contains(&cp3), "cp-3's VM is gone: {addrs:?}");
        self.replan_empty();
    }

    /// Turning on the guest agent makes the addresses unknown until apply
    /// (the agent reports them). With `on_destroy` reset the plan is
    /// refused on `node` with the way forward; without, it warns that the
    /// nodes are re-applied. Nothing is applied; the files go back.
    fn agent_on_makes_addresses_unknown(&mut self, reset: bool) {
        let saved = self.main_tf.clone();
        self.main_tf = self.main_tf.replace("  on_boot = true\n", "  on_boot = true\n  agent   = true\n");
        assert_ne!(self.main_tf, saved, "the quickstart's VM changed; update this test");
        self.write();
        let out = self.run(&["plan", "-no-color"]);
        let t = text(&out);
        if reset {
            assert!(!out.status.success(), "{t}");
            assert_eq!(t.matches("Error: Refusing to reset Talos node").count(), 5, "{t}");
            // On the `node` line itself, not the resource header.
            let line = self.main_tf.lines().position(|l| l.contains("node                  = proxtalos_vm")).unwrap();
            for want in [format!("on main.tf line {}, in resource", line + 1), "-target=<the VM resource>".into()] {
                assert!(t.contains(&want), "{want:?} missing:\n{t}");
            }
        } else {
            assert!(out.status.success(), "{t}");
            assert_eq!(t.matches("is re-applied because its address is unknown").count(), 5, "{t}");
        }
        self.main_tf = saved;
        self.write();
        self.replan_empty();
    }

    fn destroy(mut self) {
        let out = self.tf(&["destroy", "-auto-approve", "-no-color"]);
        assert!(out.contains("Destroy complete!"), "{out}");
        if let Some(lab) = self.lab.take() {
            self.rt.block_on(lab.stop());
        }
    }
}

impl Drop for Story {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            let _ = self.run(&["destroy", "-auto-approve", "-no-color"]);
            self.rt.block_on(lab.stop());
        }
    }
}

#[test]
fn unrelated_vm_changes_leave_the_talos_nodes_alone() {
    let mut s = Story::start(61, false);
    s.agent_on_makes_addresses_unknown(false);
    s.add_a_tag();
    s.raise_control_plane_memory();
    s.new_patch_release_iso();
    s.remove_cp3(false);
    s.destroy();
}

#[test]
fn with_on_destroy_reset_no_node_is_reset_by_an_unrelated_change() {
    let mut s = Story::start(62, true);
    s.agent_on_makes_addresses_unknown(true);
    s.add_a_tag();
    s.raise_control_plane_memory();
    s.new_patch_release_iso();
    s.remove_cp3(true);
    s.destroy();
}
