using Svg.ML.Runtime;
using TorchSharp;

// Prints key=value lines for the test to check; exit code 0 when torch loaded and computed, 3 on Svg.ML's error.
try
{
    TorchRuntime.EnsureInitialized();
}
catch (InvalidOperationException e)
{
    Console.WriteLine("error=" + e.Message.ReplaceLineEndings(" "));
    foreach (var line in TorchRuntime.NativeFixLog) Console.WriteLine("log=" + line);
    return 3;
}
foreach (var line in TorchRuntime.NativeFixLog) Console.WriteLine("log=" + line);
var lib = TorchRuntime.LibTorch;
Console.WriteLine($"libdir={lib?.LibDirectory}");
Console.WriteLine($"version={lib?.Version}");
Console.WriteLine($"cuda_build={lib?.HasCuda}");
// A known answer: A = arange(12) as 3x4, A·Aᵀ = [[14, 38, 62], [38, 126, 214], [62, 214, 366]]; conv2d of ones(1,1,4,4)
// with a ones(1,1,3,3) kernel = 9 everywhere (2x2). Both are exact in float32.
using var a = torch.arange(12, dtype: torch.float32).reshape(3, 4);
Console.WriteLine("matmul=" + string.Join(",", a.matmul(a.T).data<float>().ToArray()));
Console.WriteLine("conv=" + string.Join(",", torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3)).data<float>().ToArray()));
foreach (var line in File.ReadLines("/proc/self/maps"))
{
    int i = line.IndexOf('/');
    string path = i < 0 ? "" : line[i..].Trim();
    string name = Path.GetFileName(path);
    if (name.StartsWith("libtorch", StringComparison.Ordinal) || name.StartsWith("libc10", StringComparison.Ordinal) ||
        name.StartsWith("libLibTorchSharp", StringComparison.Ordinal))
        Console.WriteLine("mapped=" + path);
}
return 0;
