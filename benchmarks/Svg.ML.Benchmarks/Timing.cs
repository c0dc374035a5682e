using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Benchmarks;

/// <summary>
/// The measurement rule shared by the model figures (options in brackets, defaults after the equals sign):
/// <list type="number">
/// <item><description><c>--warmup</c> = 2 warm-up iterations (untimed). When one warm-up iteration already takes longer than
/// <c>--heavy-seconds</c> = 5 s the figure is "heavy": it stops warming up after that one iteration.</description></item>
/// <item><description>Timed iterations until at least <c>--min-iters</c> = 5 iterations AND <c>--min-seconds</c> = 10 s of
/// timed work; a heavy figure instead runs exactly <c>--heavy-iters</c> = 2 timed iterations (DiT-XL batch 8 is
/// ~2.8 TFLOP, ~25 s a forward on 2 cores).</description></item>
/// <item><description>The figure is the median seconds per iteration (min also reported).</description></item>
/// </list>
/// Every iteration runs inside its own <c>torch.NewDisposeScope()</c>. Also recorded: process CPU seconds per timed
/// iteration, the kernel share of that CPU time, and the figure's peak resident memory.
/// </summary>
public sealed record TimingRule(int Warmup, int MinIters, double MinSeconds, double HeavySeconds, int HeavyIters)
{
    /// <summary>Reads the rule from the options (see the class summary for names and defaults).</summary>
    public static TimingRule From(BenchmarkOptions o) => new(
        o.Int("warmup", 2), o.Int("min-iters", 5), o.Double("min-seconds", 10), o.Double("heavy-seconds", 5), o.Int("heavy-iters", 2));
}

/// <summary>The timed iterations of one figure.</summary>
/// <param name="Warmup">Warm-up iterations run.</param>
/// <param name="Seconds">Wall-clock seconds of each timed iteration, in order.</param>
/// <param name="Heavy">Whether the heavy rule (1 warm-up, <see cref="TimingRule.HeavyIters"/> timed) applied.</param>
/// <param name="CpuSeconds">Process CPU seconds (all threads) of each timed iteration: on a shared machine this
/// grows far less than wall time when other processes take the cores.</param>
/// <param name="SysShare">Share of the timed CPU seconds spent in the kernel (page faults of fresh allocations, thread
/// synchronisation).</param>
/// <param name="PeakRssMiB">Peak resident memory of the process during this figure (Linux; the peak is reset before the
/// warm-up), MiB, or null.</param>
public sealed record Measurement(int Warmup, IReadOnlyList<double> Seconds, bool Heavy, IReadOnlyList<double> CpuSeconds,
                                 double SysShare, double? PeakRssMiB)
{
    /// <summary>Median seconds per iteration.</summary>
    public double Median => Stats.Median(Seconds);

    /// <summary>Fastest iteration.</summary>
    public double Min => Seconds.Min();
}

/// <summary>Runs iterations by a <see cref="TimingRule"/> and builds the JSON figure.</summary>
public static class Timing
{
    /// <summary>
    /// Runs <paramref name="iteration"/> (each call in a fresh dispose scope) as <paramref name="rule"/> says.
    /// <paramref name="warmupIteration"/>, when given, replaces the iteration during warm-up (same shapes, cheaper).
    /// </summary>
    public static Measurement Run(string name, TimingRule rule, Action iteration, Action? warmupIteration = null)
    {
        var sw = new Stopwatch();
        var process = Process.GetCurrentProcess();
        var cpu = new List<double>();
        double sysSeconds = 0;
        GC.Collect();
        Memory.ResetPeak();
        double Once(Action a, bool timed)
        {
            process.Refresh();
            var (cpu0, sys0) = (process.TotalProcessorTime, process.PrivilegedProcessorTime);
            sw.Restart();
            using (var scope = NewDisposeScope()) a();
            double wall = sw.Elapsed.TotalSeconds;
            process.Refresh();
            if (timed)
            {
                cpu.Add((process.TotalProcessorTime - cpu0).TotalSeconds);
                sysSeconds += (process.PrivilegedProcessorTime - sys0).TotalSeconds;
            }
            return wall;
        }

        int warm = 0;
        bool heavy = false;
        while (warm < rule.Warmup)
        {
            double s = Once(warmupIteration ?? iteration, timed: false);
            warm++;
            Console.Error.WriteLine($"  {name}: warm-up {warm} {s:F3} s");
            if (s > rule.HeavySeconds) { heavy = true; break; }
        }

        var seconds = new List<double>();
        double total = 0;
        while (heavy ? seconds.Count < rule.HeavyIters : seconds.Count < rule.MinIters || total < rule.MinSeconds)
        {
            double s = Once(iteration, timed: true);
            seconds.Add(s);
            total += s;
            Console.Error.WriteLine($"  {name}: iteration {seconds.Count} {s:F3} s ({cpu[^1]:F3} s CPU)");
            // A figure found heavy only now (no warm-up run, or a warm-up that was faster) follows the heavy rule too.
            if (!heavy && s > rule.HeavySeconds && seconds.Count >= rule.HeavyIters) heavy = true;
        }
        double? peak = Memory.PeakRssMiB();
        return new Measurement(warm, seconds, heavy, cpu, cpu.Sum() > 0 ? sysSeconds / cpu.Sum() : 0, peak);
    }

    /// <summary>
    /// The common JSON fields of a figure: name, model, batch, dtype, device, threads, warm-up count, iterations,
    /// median and min seconds per iteration, every iteration's seconds, throughput (<paramref name="unitsPerIteration"/>
    /// / median) with its unit, and the parameter count.
    /// </summary>
    public static JsonObject Figure(string name, string model, int batch, Measurement m, double unitsPerIteration, string unit, long parameters)
    {
        return new JsonObject
        {
            ["name"] = name,
            ["model"] = model,
            ["batch"] = batch,
            ["dtype"] = "fp32",
            ["device"] = "cpu",
            ["threads"] = torch.get_num_threads(),
            ["warmup"] = m.Warmup,
            ["iterations"] = m.Seconds.Count,
            ["median_s"] = Round(m.Median),
            ["min_s"] = Round(m.Min),
            ["throughput"] = Round(unitsPerIteration / m.Median),
            ["throughput_unit"] = unit,
            ["params"] = parameters,
            ["heavy_rule"] = m.Heavy,
            ["iteration_s"] = new JsonArray(m.Seconds.Select(s => (JsonNode)Round(s)).ToArray()),
            ["cpu_s_median"] = Round(Stats.Median(m.CpuSeconds)),
            ["cpu_s"] = new JsonArray(m.CpuSeconds.Select(s => (JsonNode)Round(s)).ToArray()),
            ["cpu_sys_share"] = Round(m.SysShare),
            ["peak_rss_mib"] = m.PeakRssMiB is double p ? Math.Round(p) : null,
            ["load_average_1min"] = Stats.LoadAverage(),
        };
    }

    /// <summary>Rounds to 4 significant digits for the JSON output.</summary>
    public static double Round(double x)
    {
        if (x == 0 || double.IsNaN(x) || double.IsInfinity(x)) return x;
        int digits = Math.Max(0, 3 - (int)Math.Floor(Math.Log10(Math.Abs(x))));
        return Math.Round(x, Math.Min(digits, 15));
    }
}

/// <summary>Small statistics and environment helpers.</summary>
public static class Stats
{
    /// <summary>Median of a non-empty list.</summary>
    public static double Median(IReadOnlyList<double> xs)
    {
        var s = xs.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    /// <summary>The 1-minute load average (Linux), or null.</summary>
    public static double? LoadAverage()
    {
        try { return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture); }
        catch (Exception) { return null; }
    }

    /// <summary>Number of elements of all parameters of <paramref name="module"/>.</summary>
    public static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());
}

/// <summary>Machine description for the header.</summary>
public static class BenchmarkEnvironment
{
    /// <summary>The CPU model name from /proc/cpuinfo (Linux), or null.</summary>
    public static string? CpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
        }
        catch (Exception) { return null; }
    }

    /// <summary>The three load averages (Linux), or null.</summary>
    public static string? LoadAverageText()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (Exception) { return null; }
    }
}

/// <summary>Process peak resident memory (Linux /proc), resettable per figure.</summary>
public static class Memory
{
    /// <summary>Resets the kernel's peak-RSS mark (<c>echo 5 &gt; /proc/self/clear_refs</c>); ignored where unsupported.</summary>
    public static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception) { }
    }

    /// <summary>VmHWM (peak RSS since the last reset) in MiB, or null.</summary>
    public static double? PeakRssMiB()
    {
        try
        {
            string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? null : double.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024;
        }
        catch (Exception) { return null; }
    }
}
