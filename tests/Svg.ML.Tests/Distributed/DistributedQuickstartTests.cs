using System.Text.RegularExpressions;
using Svg.ML.Tests.Data;
using Svg.ML.Tests.Training;
using Xunit;
using Xunit.Abstractions;

namespace Svg.ML.Tests.Distributed;

/// <summary>
/// The quickstart (samples/Svg.Quickstart) with <c>--distributed</c> on 2 MPI ranks, end to end at a toy size (skipped
/// without MPICH), and the skip itself: without <c>mpiexec.mpich</c> the MPI tests say how to install it.
/// </summary>
[Collection(SerialTrainingCollection.Name)]
public sealed class DistributedQuickstartTests(ITestOutputHelper output)
{
    static string[] Tiny(string outDir, string cache) =>
    [
        "--distributed", "--data", Path.GetDirectoryName(TestData.FashionMnist("t10k-images-idx3-ubyte.gz"))!,
        "--train-images", "48", "--test-images", "24", "--ae-steps", "3", "--ae-batch", "8", "--steps", "4", "--batch", "16",
        "--fd-samples", "20", "--sampling-steps", "2", "--out", outDir, "--cache", cache,
    ];

    [SkippableFact]
    public void Quickstart_OnTwoRanks_RunsEndToEnd_EachRankLogsItsShare_AndRankZeroAloneWrites()
    {
        MpiLauncher.SkipIfUnavailable();
        using var dir = new TempDirectory();
        string cache = dir.File("cache");
        // Each rank gets its own --out (MPMD launch) so that what rank 1 writes can be seen; the cache is shared.
        var (code, log) = MpiLauncher.RunPerRank("Svg.Quickstart.dll", Tiny(dir.File("out0"), cache), Tiny(dir.File("out1"), cache));
        output.WriteLine(log);
        Assert.True(code == 0, $"mpiexec exit code {code}:\n{log}");

        // Both ranks report their device and share (gathered and printed by rank 0): 48 + 24 images in chunks of 16.
        Assert.Contains("2 MPI ranks", log);
        Assert.Matches(@"MPI rank 0 of 2 \(local rank 0 [^)]*\): device cpu; encodes training images \[0, 32\) and held-out images \[0, 16\), " +
                       @"rows \[0, 4\) of each stage-1 batch of 8, rows \[0, 8\) of each stage-2 batch of 16", log);
        Assert.Matches(@"MPI rank 1 of 2 \(local rank 1 [^)]*\): device cpu; encodes training images \[32, 48\) and held-out images \[16, 24\), " +
                       @"rows \[4, 8\) of each stage-1 batch of 8, rows \[8, 16\) of each stage-2 batch of 16", log);
        Assert.Contains("through host memory", log);
        Assert.Single(Regex.Matches(log, "Summary"));   // only rank 0 prints

        // Rank 0 wrote the checkpoints (one per stage: the last), the figures and the model; rank 1 wrote nothing.
        Assert.Equal(["autoencoder-latest.json", "autoencoder-step000000003.safetensors", "diffusion-latest.json", "diffusion-step000000004.safetensors"],
                     Directory.GetFiles(dir.File("out0/checkpoints")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (var file in new[] { "samples.png", "reconstructions.png", "model/manifest.json" })
            Assert.True(File.Exists(Path.Combine(dir.File("out0"), file)), $"rank 0 did not write {file}");
        Assert.Empty(Directory.GetFiles(dir.File("out1"), "*", SearchOption.AllDirectories));
        // The shared cache holds the two entries (training and held-out latents) and their manifests; the parts are gone.
        Assert.Equal(4, Directory.GetFiles(cache).Length);
    }

    [Fact]
    public async Task Distributed_WithoutAnMpiLibrary_StopsWithTheInstallCommand()
    {
        // A machine without MPICH, simulated by pointing the library at a missing file (in a child process: loading
        // MPI.NET here would break OneProcessTraining_LoadsNoMpi).
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            Environment = { ["SVGML_MPI_LIBRARY"] = "/no/such/folder/libmpich.so.12" },
        };
        using var dir = new TempDirectory();
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Svg.Quickstart.dll") }.Concat(Tiny(dir.File("out"), dir.File("cache"))))
            start.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string error = await process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1)))
            await process.WaitForExitAsync(timeout.Token);   // the quickstart must stop at once
        Assert.Equal(1, process.ExitCode);
        Assert.Contains("Could not load the MPI library '/no/such/folder/libmpich.so.12'", error);
        Assert.Contains("apt-get install mpich", error);
        Assert.False(Directory.Exists(dir.File("out")), await stdout);   // it stopped before doing anything
    }

    [Fact]
    public void WithoutMpich_TheMpiTests_ReportThemselvesSkipped_WithTheInstallCommand()
    {
        using var dir = new TempDirectory();   // a PATH whose folders hold no mpiexec.mpich
        Assert.Null(MpiLauncher.Find(dir.Path));
        var skip = Assert.Throws<SkipException>(() => MpiLauncher.SkipIfUnavailable(dir.Path));
        Assert.Contains("sudo apt-get install mpich", skip.Message);

        File.WriteAllText(dir.File(MpiLauncher.Launcher), "");   // a stand-in: now it is found and nothing is skipped
        Assert.Equal(dir.File(MpiLauncher.Launcher), MpiLauncher.Find("/no/such/folder" + Path.PathSeparator + dir.Path));
        MpiLauncher.SkipIfUnavailable(dir.Path);
    }
}
