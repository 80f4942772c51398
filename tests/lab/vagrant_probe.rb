# tests/lab/vagrant_probe.rb: evaluates a Vagrantfile without Vagrant and prints what it
# configures, one tab-separated record a line, for tests/e2e/test_vagrant.sh:
#   box       VALUE
#   machine   NAME
#   network   MACHINE  TYPE  IP  AUTO_CONFIG
#   synced    HOST_PATH  GUEST_PATH  DISABLED
#   provision MACHINE  TYPE  SCRIPT  GUEST   (SCRIPT: tests/lab/provision/X.sh named by inline or
#             path, or ?; GUEST: where an inline script expects the checkout in the VM)
#   arg       MACHINE  INDEX  VALUE   (the arguments of the provisioner just before)
# Every configuration call is recorded and answered by another recorder; blocks given to define,
# provider, provision and triggers run with one, so the whole file is evaluated. Trigger code
# (t.ruby blocks) is never run. Usage: ruby vagrant_probe.rb PATH/Vagrantfile
# Must never: contact a hypervisor, the network or a box catalogue (there is no Vagrant here).

# Records the configuration calls made on it, for one machine (or the top level).
class Recorder
  def initialize(machine)
    @machine = machine
  end

  def record(*fields)
    puts fields.map { |f| f.to_s.tr("\t\n", "  ") }.join("\t")
  end

  def define(name, *_args, **_kw)
    record("machine", name)
    yield Recorder.new(name.to_s) if block_given?
    Recorder.new(name.to_s)
  end

  def network(type, **kw)
    record("network", @machine || "*", type, kw[:ip] || kw[:type], kw.fetch(:auto_config, true))
    Recorder.new(@machine)
  end

  def synced_folder(host, guest, **kw)
    record("synced", host, guest, kw.fetch(:disabled, false))
    Recorder.new(@machine)
  end

  def provision(type, **kw)
    script = "?"
    guest = ""
    if kw[:path]
      script = kw[:path]
    elsif kw[:inline].to_s =~ %r{(\S*)/(tests/lab/provision/[\w.-]+)}
      guest = Regexp.last_match(1)
      script = Regexp.last_match(2)
    end
    record("provision", @machine || "*", type, script, guest)
    Array(kw[:args]).each_with_index { |a, i| record("arg", @machine || "*", i, a) }
    yield Recorder.new(@machine) if block_given?
    Recorder.new(@machine)
  end

  def box=(value)
    record("box", value) if @machine.nil?
  end

  # trigger code runs on the host against a live machine: never here
  def ruby(*)
    nil
  end

  def method_missing(_name, *_args, **_kw)
    child = Recorder.new(@machine)
    yield child if block_given?
    child
  end

  def respond_to_missing?(*)
    true
  end
end

# Stands in for Vagrant's entry point.
module Vagrant
  def self.configure(_version)
    yield Recorder.new(nil)
  end
end

abort "usage: ruby #{$PROGRAM_NAME} Vagrantfile" unless ARGV.length == 1
load File.expand_path(ARGV[0])
