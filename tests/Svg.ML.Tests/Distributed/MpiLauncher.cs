using System.Diagnostics;
using Xunit;

namespace Svg.ML.Tests.Distributed;

/// <summary>
/// Launches the test host (tests/Svg.ML.DistributedHost) on N ranks with MPICH's <c>mpiexec.mpich</c> on this machine
/// (loopback). Without MPICH the MPI tests report themselves skipped, with the command that installs it.
/// </summary>
static class MpiLauncher
{
    public const string Launcher = "mpiexec.mpich";
    public const string InstallHint = "MPICH is not installed (no mpiexec.mpich on PATH); install it to run the MPI tests: sudo apt-get install mpich";

    static readonly Lazy<string?> Found = new(() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, Launcher)).FirstOrDefault(File.Exists));

    /// <summary>Reports the calling test skipped when MPICH is absent.</summary>
    public static void SkipIfUnavailable() => Skip.If(Found.Value is null, InstallHint);

    /// <summary>Runs <c>mpiexec.mpich -n ranks dotnet Svg.ML.DistributedHost.dll args…</c>; returns the exit code
    /// and the combined output. Each rank uses one libtorch thread (two ranks share this machine's cores).</summary>
    public static (int ExitCode, string Output) Run(int ranks, params string[] args)
    {
        var start = new ProcessStartInfo(Found.Value!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-n", ranks.ToString(), "dotnet", Path.Combine(AppContext.BaseDirectory, "Svg.ML.DistributedHost.dll") }.Concat(args))
            start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Launcher} -n {ranks} did not finish in 3 minutes (a rank hung?): {stdout.Result}{stderr.Result}");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>The lines of rank <paramref name="rank"/>'s report (rank{r}.txt in the output folder).</summary>
    public static string[] Report(string output, int rank) => File.ReadAllLines(Path.Combine(output, $"rank{rank}.txt"));

    /// <summary>The losses a rank reported.</summary>
    public static float[] Losses(string output, int rank) =>
        Report(output, rank).Single(l => l.StartsWith("losses ", StringComparison.Ordinal))["losses ".Length..]
            .Split(' ').Select(s => float.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
}
