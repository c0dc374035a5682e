// Placeholder main job until the offline end-to-end quickstart lands: proves the runtime works on this machine.
using Svg.ML.Runtime;
using TorchSharp;

TorchRuntime.EnsureInitialized();
using var x = torch.randn(256, 256);
using var y = x.matmul(x.T);
Console.WriteLine($"Svg.ML runtime OK: TorchSharp {typeof(torch).Assembly.GetName().Version}, threads {torch.get_num_threads()}, " +
                  $"device cpu, check {y.diagonal().mean().item<float>():F2} (≈256).");
Console.WriteLine("The offline end-to-end SVG quickstart is not built yet.");
