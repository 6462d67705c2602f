namespace Bn.MLNet; internal static class Placeholder { }
