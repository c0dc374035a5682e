using System.Diagnostics;
using Xunit;

namespace Svg.ML.Tests.Distributed;

/// <summary>
/// Launches programs of the test folder (the test host tests/Svg.ML.DistributedHost, the quickstart) on N ranks with
/// MPICH's <c>mpiexec.mpich</c> on this machine (loopback). Without MPICH the MPI tests report themselves skipped, with
/// the command that installs it.
/// </summary>
static class MpiLauncher
{
    public const string Launcher = "mpiexec.mpich";
    public const string InstallHint = "MPICH is not installed (no mpiexec.mpich on PATH); install it to run the MPI tests: sudo apt-get install mpich";
    public const string Host = "Svg.ML.DistributedHost.dll";

    static readonly Lazy<string?> Found = new(() => Find(Environment.GetEnvironmentVariable("PATH")));

    /// <summary>The launcher in the folders of <paramref name="searchPath"/> (a PATH value), or null.</summary>
    public static string? Find(string? searchPath) =>
        (searchPath ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, Launcher)).FirstOrDefault(File.Exists);

    /// <summary>Reports the calling test skipped (with <see cref="InstallHint"/>) when MPICH is absent from PATH, or from
    /// <paramref name="searchPath"/> when given.</summary>
    public static void SkipIfUnavailable(string? searchPath = null) =>
        Skip.If((searchPath is null ? Found.Value : Find(searchPath)) is null, InstallHint);

    /// <summary>Runs <c>mpiexec.mpich -n ranks dotnet Svg.ML.DistributedHost.dll args…</c>; returns the exit code
    /// and the combined output. Each rank uses one libtorch thread (two ranks share this machine's cores).</summary>
    public static (int ExitCode, string Output) Run(int ranks, params string[] args) => RunProgram(ranks, Host, args);

    /// <summary><c>mpiexec.mpich -n ranks dotnet program args…</c> for a program of the test folder.</summary>
    public static (int ExitCode, string Output) RunProgram(int ranks, string program, params string[] args) =>
        Launch(new[] { "-n", ranks.ToString(), "dotnet", Path.Combine(AppContext.BaseDirectory, program) }.Concat(args));

    /// <summary>
    /// One rank per entry of <paramref name="argsPerRank"/>, each with its own arguments (MPMD:
    /// <c>mpiexec -n 1 dotnet program a… : -n 1 dotnet program b…</c>), e.g. to see what each rank writes.
    /// </summary>
    public static (int ExitCode, string Output) RunPerRank(string program, params string[][] argsPerRank) =>
        Launch(argsPerRank.SelectMany((args, r) => (r == 0 ? [] : new[] { ":" })
            .Concat(["-n", "1", "dotnet", Path.Combine(AppContext.BaseDirectory, program)]).Concat(args)));

    static (int ExitCode, string Output) Launch(IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(Found.Value!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Launcher} {string.Join(' ', start.ArgumentList)} did not finish in 3 minutes (a rank hung?): {stdout.Result}{stderr.Result}");
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
