using Microsoft.ML.OnnxRuntime;

namespace Bn.MLNet.Onnx;

/// <summary>
/// Whether ONNX Runtime can run in this process. Bn.MLNet references only its managed API
/// (<c>Microsoft.ML.OnnxRuntime.Managed</c>); the native library comes with the <c>Microsoft.ML.OnnxRuntime</c> package,
/// which the app references when it wants scoring on ONNX Runtime. Probed once per process.
/// </summary>
internal static class OnnxRuntimeAvailability
{
    private static readonly Lazy<string?> s_problem = new(Probe);
    private static readonly AsyncLocal<string?> s_simulated = new();

    /// <summary>Null when ONNX Runtime loads; otherwise why it does not, as a clause for a message.</summary>
    public static string? Problem => s_simulated.Value ?? s_problem.Value;

    /// <summary>For tests: until the scope is disposed, code on this async flow sees ONNX Runtime as unavailable for <paramref name="reason"/>.</summary>
    internal static IDisposable SimulateUnavailable(string reason)
    {
        s_simulated.Value = reason;
        return new Scope();
    }

    private sealed class Scope : IDisposable
    {
        public void Dispose() => s_simulated.Value = null;
    }

    private static string? Probe()
    {
        try
        {
            using var options = new SessionOptions();
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or EntryPointNotFoundException
            or BadImageFormatException or OnnxRuntimeException or InvalidOperationException)
        {
            Exception inner = e is TypeInitializationException { InnerException: { } i } ? i : e;
            return $"ONNX Runtime's native library does not load ({inner.GetType().Name}: {inner.Message.Split('\n')[0].Trim()}); " +
                "reference the package Microsoft.ML.OnnxRuntime in the app to score with it";
        }
    }
}
