using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests;

public class NativeLoadTests
{
    [Fact]
    public void TorchSharpForwardPassRuns()
    {
        using var x = torch.ones(2, 3);
        using var lin = nn.Linear(3, 4);
        using var y = lin.forward(x);
        Assert.Equal(new long[] { 2, 4 }, y.shape);
    }
}
