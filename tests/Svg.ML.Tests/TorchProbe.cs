using Svg.ML.Runtime;
using TorchSharp;
using Xunit;

namespace Svg.ML.Tests;

public class TorchRuntimeTests
{
    [Fact]
    public void Torch_InitialisesAndComputes_OnThisMachine()
    {
        TorchRuntime.EnsureInitialized();
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var b = a.matmul(a.T);
        Assert.Equal(new float[] { 5, 14, 14, 50 }, b.data<float>().ToArray());
    }
}
