# Sandpit's Ruby kernel: state kept between requests, like a notebook.
#
# Protocol: one JSON request per line on stdin ({"code": ...}); JSON frames, one per line, on the
# process's original stdout: ready, stream, result, error, done. User output (fd 1 and 2, so
# puts, C extensions and child processes alike) goes through pipes that threads forward as stream
# frames; a sentinel written after each request proves both pipes are drained before `done`.
# Code runs with one Binding kept for the whole session (locals, methods, constants, requires
# persist); SIGINT raises Interrupt in the running code and is ignored between requests.
require "json"

module SandpitKernel
  SENTINEL = "\0SANDPIT-DRAINED\0".b
  LIMIT = Integer(ENV.fetch("SANDPIT_OUTPUT_LIMIT", ""), exception: false) || (1 << 20)
  # Ruby opens descriptors close-on-exec: child processes never hold these two.
  KERNEL_PID = Process.pid
  PROTO = STDOUT.dup
  PROTO.binmode
  PROTO.sync = true
  REQUESTS = STDIN.dup
  LOCK = Mutex.new

  # Text for a frame: valid UTF-8 whatever the string's encoding.
  def self.utf8(text)
    text = text.to_s
    if [Encoding::UTF_8, Encoding::BINARY, Encoding::US_ASCII].include?(text.encoding)
      text.dup.force_encoding(Encoding::UTF_8).scrub
    else
      text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
    end
  rescue StandardError
    text.to_s.dup.force_encoding(Encoding::UTF_8).scrub
  end

  def self.send_frame(frame)
    line = JSON.generate(frame) + "\n"
    # A process forked by user code is not the kernel: it never speaks on the channel.
    return unless Process.pid == KERNEL_PID

    LOCK.synchronize { PROTO.write(line) }
  end

  # Forwards one redirected descriptor as stream frames, up to the output limit per request.
  class Pump
    def initialize(io, name)
      read, write = IO.pipe
      read.binmode
      io.reopen(write)
      io.sync = true
      write.close
      @read = read
      @name = name
      @sent = 0
      @flagged = false
      @tail = "".b
      @carry = "".b
      @drained = false
      @mutex = Mutex.new
      @cv = ConditionVariable.new
      @thread = Thread.new { run }
      @thread.name = "sandpit-#{name}"
    end

    def run
      loop do
        data = @tail + @read.readpartial(65_536)
        @tail = "".b
        while data && !data.empty?
          at = data.index(SENTINEL)
          if at.nil?
            keep = (SENTINEL.bytesize - 1).downto(1).find { |k| data.end_with?(SENTINEL.byteslice(0, k)) } || 0
            forward(data.byteslice(0, data.bytesize - keep))
            @tail = data.byteslice(data.bytesize - keep, keep)
            break
          end
          forward(data.byteslice(0, at))
          forward_text(@carry, false) unless @carry.empty? || @flagged
          @carry = "".b
          @sent = 0
          @flagged = false
          @mutex.synchronize do
            @drained = true
            @cv.signal
          end
          data = data.byteslice(at + SENTINEL.bytesize, data.bytesize)
        end
      end
    rescue EOFError, IOError
      nil
    end

    def forward(chunk)
      return if chunk.empty?

      room = LIMIT - @sent
      @sent += chunk.bytesize
      if room <= 0
        unless @flagged
          @flagged = true
          forward_text(@carry, true)
          @carry = "".b
        end
        return
      end
      if chunk.bytesize > room
        cut = room
        cut -= 1 while cut.positive? && (chunk.getbyte(cut) & 0xC0) == 0x80
        @flagged = true
        forward_text(@carry + chunk.byteslice(0, cut), true)
        @carry = "".b
        return
      end
      bytes = @carry + chunk
      # Keep an incomplete UTF-8 character for the next read.
      keep = 0
      1.upto([3, bytes.bytesize].min) do |k|
        byte = bytes.getbyte(bytes.bytesize - k)
        next if (byte & 0xC0) == 0x80

        need = if byte >= 0xF0 then 4 elsif byte >= 0xE0 then 3 elsif byte >= 0xC0 then 2 else 1 end
        keep = k if need > k
        break
      end
      @carry = bytes.byteslice(bytes.bytesize - keep, keep)
      forward_text(bytes.byteslice(0, bytes.bytesize - keep), false)
    end

    def forward_text(bytes, truncated)
      return if bytes.empty? && !truncated

      text = SandpitKernel.utf8(bytes)
      frame = { type: "stream", name: @name, text: text }
      frame[:truncated] = true if truncated
      SandpitKernel.send_frame(frame)
    end

    def start_drain
      @mutex.synchronize { @drained = false }
    end

    def wait_drained(deadline)
      @mutex.synchronize do
        until @drained
          left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          break if left <= 0

          @cv.wait(@mutex, left)
        end
      end
    end
  end

  STDOUT.flush
  STDERR.flush
  PUMPS = [Pump.new(STDOUT, "stdout"), Pump.new(STDERR, "stderr")].freeze
  # User code (and its children) read /dev/null, not the requests.
  STDIN.reopen(File::NULL)

  # Locals defined by one request are seen by the next ones through the same Binding.
  BINDING = TOPLEVEL_BINDING.dup
  @busy = false

  # A process started by the engine may inherit SIGINT ignored: handle it explicitly. The
  # Interrupt is raised only while code runs (the kernel itself masks it).
  trap("INT") do
    Thread.main.raise(Interrupt) if @busy
  end

  def self.drain
    PUMPS.each(&:start_drain)
    # Wait only for the streams that took their sentinel (the code may have closed one).
    written = [STDOUT, STDERR].map do |io|
      io.flush
      io.syswrite(SENTINEL)
      true
    rescue StandardError
      false
    end
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
    PUMPS.zip(written).each { |p, ok| p.wait_drained(deadline) if ok }
  end

  def self.error_frame(e)
    # Without the kernel's own frames: the trap that raised an Interrupt, the eval below.
    ours = ->(l) { l.start_with?(__FILE__) }
    backtrace = (e.backtrace || []).drop_while(&ours).take_while { |l| !ours.(l) }
    name = utf8(e.class.name || e.class.inspect)
    message = utf8(e.message)
    head = backtrace.empty? ? "" : "#{utf8(backtrace.first)}: "
    lines = "#{head}#{message} (#{name})".lines.map(&:chomp)
    lines.concat(backtrace.drop(1).map { |l| "\tfrom #{utf8(l)}" })
    { type: "error", name: name, value: message, traceback: lines }
  rescue Exception # rubocop:disable Lint/RescueException - a broken exception is still reported
    { type: "error", name: "Exception", value: "an exception that cannot be shown", traceback: [] }
  end

  def self.run(code, n)
    error = nil
    result = nil
    begin
      @busy = true
      Thread.handle_interrupt(Interrupt => :immediate) do
        value = BINDING.eval(code, "cell-#{n}", 1)
        result = value.inspect unless value.nil?
      end
    rescue Exception => e # rubocop:disable Lint/RescueException - report everything
      error = error_frame(e)
    ensure
      @busy = false
    end
    # A child that user code forked without a block came back here: it is done.
    exit!(0) unless Process.pid == KERNEL_PID
    # An interrupt that came as the code ended is not for the next request.
    if Thread.pending_interrupt?
      begin
        Thread.handle_interrupt(Interrupt => :immediate) { Thread.pass }
      rescue Interrupt
        nil
      end
    end
    send_frame({ type: "result", data: { "text/plain" => utf8(result) }, main: true }) unless result.nil?
    drain
    send_frame(error) if error
    send_frame({ type: "done" })
  end

  # The session's environment comes with each request: variables set since the last one are
  # set, and the ones it set before that are gone now are removed.
  @managed_env = []
  def self.apply_env(env)
    return unless env.is_a?(Hash)

    (@managed_env - env.keys).each { |key| ENV.delete(key) }
    env.each { |key, value| ENV[key.to_s] = value.to_s }
    @managed_env = env.keys
  end

  def self.main
    Thread.handle_interrupt(Interrupt => :never) do
      send_frame({ type: "ready", pid: Process.pid, flavour: "binding" })
      n = 0
      while (line = REQUESTS.gets)
        request = begin
          JSON.parse(line)
        rescue JSON::ParserError
          next
        end
        n += 1
        code = request.is_a?(Hash) && request["code"].is_a?(String) ? request["code"] : ""
        apply_env(request["env"]) if request.is_a?(Hash)
        run(code, n)
      end
    end
  end
end

SandpitKernel.main
